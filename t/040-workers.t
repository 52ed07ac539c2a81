# Many workers, one registry (docs/ARCHITECTURE.md, "many workers, one
# registry"): nginx with 4 workers
# and reuseport listeners, so TCP and WebSocket clients and push API calls
# spread over the workers. Pushes by key, mid, room and to all reach
# exactly the intended connections on whichever worker holds them, once
# each, in order; online counts sum over the workers; back-to-back room
# pushes arrive in order and merged; a duplicate key on another worker
# kicks the older connection (and a stale kick must not close a newer
# one); a full inbox refuses pushes with 503, logged at most once a
# second per worker with a count; a key push naming more than 64
# connections of one worker crosses in one inbox message.
#
# Which worker holds a connection comes from ss and /proc (GoimWorkers),
# which worker served an API call from the X-Worker header ($pid).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimWorkers;
use Time::HiRes qw(time sleep);

skip_unless_module();

use constant SENTINEL => 9999;

add_block_preprocessor(sub { worker_servers(shift, drain => 1) });

# Reads a client's pushes until it has seen every sentinel body in
# @ends (op SENTINEL); returns the pushes before them as "op:body", with
# 'MISSING <end>' appended for a sentinel that did not come.
sub collect {
    my ($c, @ends) = @_;
    my %want = map { $_ => 1 } @ends;
    my @got;
    my $deadline = time + T(5);
    while (%want) {
        my ($p) = $c->read_pushes(1, $deadline - time);
        unless ($p) {
            push @got, map { "MISSING $_" } sort keys %want;
            last;
        }
        if ($p->{op} == SENTINEL && delete $want{ $p->{body} }) {
            next;
        }
        push @got, "$p->{op}:$p->{body}";
    }
    return \@got;
}

# Bodies of a client's pushes up to and including the first $end body.
sub read_until {
    my ($c, $end) = @_;
    my @got;
    my $deadline = time + T(3);
    while (my ($p) = $c->read_pushes(1, $deadline - time)) {
        push @got, $p->{body};
        last if $p->{body} eq $end;
    }
    return @got;
}

# The pids in the stream module's "client ... connected to" info lines.
sub stream_pids {
    my %pid;
    $pid{$_}++ for error_log_text() =~
        /\[info\] (\d+)#\d+: \*\d+ client \S+ connected to /g;
    return \%pid;
}

run_tests();

__DATA__

=== TEST 1: keys, mids, room and all reach exactly the intended connections on every worker
--- perl
my @workers = worker_pids();
is scalar(@workers), 4, "$name - 4 workers";
my @rooms = ('live://a', 'live://b', '');
my @c = spread_clients(workers => \@workers, per_worker => 2, token => sub {
    my ($i) = @_;
    return { mid => 100 + $i % 5, key => "k$i", room_id => $rooms[$i % 3],
             accepts => $i % 4 == 3 ? [1001, SENTINEL]
                                    : [1000, 1001, SENTINEL] };
});
my $by_pid = pid_counts(@c);
is scalar(keys %$by_pid), 4, "$name - clients on all 4 workers"
    or diag explain $by_pid;
is scalar(@c), 16, "$name - 2 TCP and 2 WebSocket clients per worker";
is scalar(keys %{ stream_pids() }), 4,
   "$name - error.log: stream connections accepted by 4 workers";

# targets chosen so that one request names connections of several workers
my %first;                      # worker pid -> its first client
$first{ $_->{pid} } //= $_ for @c;
my @one_per_worker = map { $first{$_}{key} } sort keys %first;
my ($c0, $c1) = @first{ (sort keys %first)[0, 1] };
my $only1001 = (grep { $_->{token}{accepts}[0] == 1001 } @c)[0];

my @push;                       # [kind, targets, op, body]
for my $round (1, 2) {
    push @push,
        [keys => [@one_per_worker], 1000, "key-$round-a"],
        [keys => [$c1->{key}, 'nokey', $c0->{key}], 1001, "key-$round-b"],
        [keys => [$only1001->{key}], 1000, "key-$round-c"],
        [mids => [100, 101], 1000, "mid-$round-a"],
        [mids => [102, 103, 104], 1001, "mid-$round-b"],
        [mids => [999], 1000, "mid-$round-c"],
        [room => 'live://a', 1002, "room-$round-a"],
        [room => 'live://b', 5000, "room-$round-b"],
        [room => 'live://none', 1000, "room-$round-c"],
        [all => undef, 1000, "all-$round-a"],
        [all => undef, 1001, "all-$round-b"],
        [all => undef, 7777, "all-$round-c"];
}
my %served;
for my $p (@push) {
    my ($kind, $t, $op, $body) = @$p;
    my $q = $kind eq 'keys' ? join('', map { "&keys=$_" } @$t)
          : $kind eq 'mids' ? '&mids=' . join(',', @$t)
          : $kind eq 'room' ? do { my ($ty, $id) = split m{://}, $t;
                                   "&type=$ty&room=$id" }
          : '';
    $served{ push_ok("/goim/push/$kind?operation=$op$q", $body) // '?' }++;
}
push_ok('/goim/push/all?operation=' . SENTINEL, 'END');
push_ok("/goim/push/room?operation=@{[SENTINEL]}&type=live&room=$_", 'ROOMEND')
    for 'a', 'b';
ok keys(%served) >= 2, "$name - pushes served by "
   . scalar(keys %served) . " workers (reuseport)";

for my $c (@c) {
    my $tok = $c->{token};
    my %acc = map { $_ => 1 } @{ $tok->{accepts} };
    my (@want_room, @want_other);
    for my $p (@push) {
        my ($kind, $t, $op, $body) = @$p;
        if ($kind eq 'room') {
            push @want_room, "$op:$body" if $t eq $tok->{room_id};
            next;
        }
        next unless $acc{$op};
        my %t = map { $_ => 1 } @{ $t // [] };
        push @want_other, "$op:$body"
            if $kind eq 'all' || ($kind eq 'keys' && $t{ $tok->{key} })
               || ($kind eq 'mids' && $t{ $tok->{mid} });
    }
    my $got = collect($c, 'END', $tok->{room_id} ? 'ROOMEND' : ());
    my @got_room = grep { /:room-/ } @$got;
    my @got_other = grep { !/:room-/ } @$got;
    my $who = "$tok->{key} ($c->{transport}, worker $c->{pid}, "
        . "room '$tok->{room_id}')";
    is_deeply \@got_room, \@want_room,
        "$name - $who: its room pushes, once each, in order"
        or diag explain $got;
    is_deeply \@got_other, \@want_other,
        "$name - $who: its key, mid and all pushes, once each, in order"
        or diag explain $got;
}
$_->close for @c;



=== TEST 2: a key or a mid named twice in one push is delivered once
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => 200 + $i % 2, key => "d$i", accepts => [1000, SENTINEL] };
});
my $keys = join '', map { "&keys=$_->{key}&keys=$_->{key}" } @c;
push_ok("/goim/push/keys?operation=1000$keys", 'twice-keys');
push_ok('/goim/push/mids?operation=1000&mids=200,201&mids=200&mids=201,200',
        'twice-mids');
push_ok('/goim/push/all?operation=' . SENTINEL, 'END');
for my $c (@c) {
    my $got = collect($c, 'END');
    my $who = "$c->{key} ($c->{transport}, worker $c->{pid})";
    is scalar(grep { $_ eq '1000:twice-keys' } @$got), 1,
       "$name - $who: a key listed twice: once";
    is scalar(grep { $_ eq '1000:twice-mids' } @$got), 1,
       "$name - $who: a mid listed three times: once";
}
$_->close for @c;



=== TEST 3: online counts (heartbeat, online/room, top, total) sum over workers
--- perl
my @workers = worker_pids();
my @rooms = ('live://1000', 'live://1000', 'live://2000', 'live://3000', '');
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "o$i", room_id => $rooms[$i % 5] };
});
is scalar(keys %{ pid_counts(@c) }), 4, "$name - clients on all 4 workers";

# what every count must be, from the clients that are open
my $check = sub {
    my ($what, @open) = @_;
    my %room;
    $room{ $_->{token}{room_id} }++ for @open;
    for my $c (@open) {
        my $r = $c->{token}{room_id};
        is $c->heartbeat, $r ? $room{$r} : 0,
           "$name - $what: heartbeat of $c->{key} (worker $c->{pid}, "
           . "'$r') counts the room on all workers";
    }
    my (%seen, @bad);
    for (1 .. 8) {    # several connections: several workers answer
        my ($st, $j, $raw, $pid) = api(GET => '/goim/online/room?type=live'
            . '&rooms=1000&rooms=2000&rooms=3000&rooms=404');
        $seen{ $pid // '?' }++;
        my %want = map { $_ => $room{"live://$_"} // 0 } 1000, 2000, 3000, 404;
        push @bad, "room: $raw" unless $st == 200 && $j
            && Test::More::eq_hash($j->{data}, \%want);
        ($st, $j, $raw, $pid) = api(GET => '/goim/online/total');
        $seen{ $pid // '?' }++;
        push @bad, "total: $raw" unless $st == 200 && $j
            && $j->{data}{conn_count} == @open
            && $j->{data}{ip_count} >= 1 && $j->{data}{ip_count} <= 4;
        ($st, $j, $raw, $pid) =
            api(GET => '/goim/online/top?type=live&limit=10');
        $seen{ $pid // '?' }++;
        my @want = map { { room_id => $_, count => $room{"live://$_"} } }
                   grep { $room{"live://$_"} } 1000, 2000, 3000;
        my @got = sort { $a->{room_id} cmp $b->{room_id} }
                  @{ $j && ref $j->{data} eq 'ARRAY' ? $j->{data} : [] };
        my @desc = map { $_->{count} } @{ $j ? $j->{data} // [] : [] };
        push @bad, "top: $raw" unless $st == 200
            && Test::More::eq_array(\@got, \@want)
            && join(',', @desc) eq join(',', sort { $b <=> $a } @desc);
    }
    ok !@bad, "$name - $what: online/room, total, top right from "
       . scalar(keys %seen) . " answering workers" or diag join "\n", @bad;
};
$check->('all open', @c);

# one client per worker leaves; one moves to another room
my (%gone, @open);
for my $c (@c) {
    if (!$gone{ $c->{pid} }++) { $c->close } else { push @open, $c }
}
my $ok = wait_until(sub {
    my ($st, $j) = api(GET => '/goim/online/total');
    $j && $j->{data}{conn_count} == @open;
}, T(3));
ok $ok, "$name - total follows closes on every worker";
my ($mover) = grep { $_->{token}{room_id} ne 'live://3000' } @open;
is $mover->change_room('live://3000'), 'live://3000', "$name - change room";
$mover->{token}{room_id} = 'live://3000';
$check->('after closes and a move', @open);
$_->close for @open;



=== TEST 4: 20 back-to-back room pushes: every member on every worker, in order, merged
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => $i + 1, room_id => 'live://r' };
});
is scalar(keys %{ pid_counts(@c) }), 4, "$name - members on all 4 workers";
my $other = goim_client(tcp => { mid => 99, room_id => 'live://other',
                                 accepts => [1000] });
my $room = '/goim/push/room?operation=1000&type=live&room=r';

my $check = sub {
    my ($what, $prefix, $frames_must_merge) = @_;
    my $end = "/goim/push/room?operation=@{[SENTINEL]}&type=live&room=r";
    push_ok($end, "$prefix-END");
    for my $c (@c) {
        my @p = $c->read_pushes(21, T(3));
        my $who = "$c->{transport} member on worker $c->{pid}";
        is_deeply [map { $_->{body} } @p],
            [(map { "$prefix$_" } 1 .. 20), "$prefix-END"],
            "$name - $what: $who: 20 in order, once, nothing lost";
        next unless $c->is_ws && $frames_must_merge;
        my $frames = ws_frames(@p[0 .. 19]);
        ok $frames < 20, "$name - $what: $who: merged into $frames frames";
    }
};

# pipelined on one connection: one worker runs them in one event-loop turn
my @st = pipeline_push([map { [$room, "p$_"] } 1 .. 20]);
is_deeply \@st, [(200) x 20], "$name - 20 pipelined pushes accepted";
$check->('pipelined', 'p', 1);

# one connection each, so several workers serve them
sleep 0.25;
my $t0 = time;
my %served;
$served{ push_ok($room, "s$_") // '?' }++ for 1 .. 20;
my $took = time - $t0;
note sprintf "20 pushes took %.3fs, served by %d workers", $took,
     scalar keys %served;
# merging is certain only if they came faster than the flush interval
$check->('sequential', 's', $took < 1.5);

my ($p) = $other->read_pushes(1, T(0.3));
is $p, undef, "$name - a member of another room got nothing";
$_->close for @c, $other;



=== TEST 5: a duplicate key on another worker kicks the older connection
--- perl
my @workers = worker_pids();
for my $t (qw(ws tcp)) {
    my $tok = { mid => 7, key => "dup-$t", room_id => 'live://d',
                accepts => [1000] };
    my $old = goim_client($t => $tok);
    # a new connection with the same key, on a different worker
    my $new;
    for (1 .. 60) {
        my $c = goim_connect($t);
        my $pid = owner_pid($c);
        if (defined $pid && $pid != $old->{pid}) { $new = $c; last }
        $c->close;
    }
    ok $new, "$name - $t: second connection on another worker" or next;
    GoimWorkers::goim_auth($new, { %$tok, mid => 8 });
    ok $old->expect_closed(T(3)), "$name - $t: older connection closed";
    is $old->close_code, 1008, "$name - ws: close 1008 (policy)" if $t eq 'ws';
    push_ok("/goim/push/keys?operation=1000&keys=dup-$t", "to-$t");
    push_ok('/goim/push/mids?operation=1000&mids=7', "mid7-$t");
    push_ok('/goim/push/mids?operation=1000&mids=8', "mid8-$t");
    push_ok("/goim/push/keys?operation=1000&keys=dup-$t", "end-$t");
    is_deeply [read_until($new, "end-$t")], ["to-$t", "mid8-$t", "end-$t"],
        "$name - $t: the new connection gets the key's pushes, once";
    is_deeply [map { $_->{body} } grep { $_->{op} == 1000 } @{ $old->{inbox} }],
        [], "$name - $t: the old one got nothing";
    my $ok = wait_until(sub {
        my ($st, $j) = api(GET => '/goim/online/total');
        my ($st2, $r) = api(GET => '/goim/online/room?type=live&rooms=d');
        $j && $j->{data}{conn_count} == 1 && $r && $r->{data}{d} == 1;
    }, T(2));
    ok $ok, "$name - $t: online counts the key once";
    is $new->heartbeat, 1, "$name - $t: heartbeat: room of one";
    $new->close;
    wait_until(sub {
        my ($st, $j) = api(GET => '/goim/online/total');
        $j && $j->{data}{conn_count} == 0;
    }, T(2));
}
--- error_log
duplicate key: replaced by a newer connection



=== TEST 6: a full inbox refuses pushes with 503; the stopped worker gets the queued ones
--- main_config
goim_shutdown_drain 1s;
goim_inbox_size 16;
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2 reuseport;
        location = /sub { goim_websocket; }
        location /goim/ {
            goim_logic_api;
            add_header X-Worker $pid always;
        }
    }
    # the push API on a shared (not reuseport) socket: a stopped worker
    # does not take connections from it, the others do
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT3;
        location /goim/ {
            goim_logic_api;
            add_header X-Worker $pid always;
        }
    }
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1,
                       transports => ['tcp'], token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "q$i", room_id => 'live://q',
             accepts => [1000] };
});
my $ws = goim_client(ws => { mid => 50, key => 'qws', room_id => 'live://q',
                             accepts => [1000] });
push @c, $ws;
my $victim = $c[0];
my $w = $victim->{pid};
my @others = grep { $_->{pid} != $w } @c;
my $bystander = $others[0];
ok @others >= 3, "$name - room members on the stopped worker and on "
   . scalar(keys %{ pid_counts(@others) }) . " others";
is $victim->heartbeat, scalar(@c), "$name - worker $w idle before the stop";

my (@accepted, @refused, @answers, %served, $timeouts);
my $stopped = kill 'STOP', $w;
my $ok = eval {
    ok wait_until(sub { (proc_state($w) // '') eq 'T' }, T(2)),
       "$name - worker $w stopped";
    for my $n (1 .. 40) {
        my ($st, $j, $raw, $pid) = api(POST =>
            '/goim/push/room?operation=1000&type=live&room=q', "m$n",
            port => $ENV{TEST_NGINX_PORT3}, timeout => T(2));
        unless (defined $st) { $timeouts++; next }
        $served{$pid}++;
        s/\s+\z// for $raw;
        push @answers, "$st $raw";
        push @{ $st == 200 ? \@accepted : \@refused }, "m$n";
        last if @refused >= 4;
    }
    # a key push to the stopped worker is refused too, not to the others
    my ($st, $j, $raw) = api(POST =>
        "/goim/push/keys?operation=1000&keys=$victim->{key}", 'key-stopped',
        port => $ENV{TEST_NGINX_PORT3}, timeout => T(2));
    s/\s+\z// for $raw;
    is "$st $raw",
       '503 {"code":-500,"message":"a worker\'s inbox is full, push refused"}',
       "$name - key push to the stopped worker: 503";
    ($st, $j, $raw) = api(POST =>
        "/goim/push/keys?operation=1000&keys=$bystander->{key}", 'key-other',
        port => $ENV{TEST_NGINX_PORT3}, timeout => T(2));
    s/\s+\z// for $raw;
    is "$st $raw", '200 {"code":0,"message":""}',
       "$name - key push to a running worker: 200";
    1;
};
my $err = $@;
kill 'CONT', $w if $stopped;
die $err unless $ok;

ok !$served{$w}, "$name - no API call was served by the stopped worker";
is $timeouts // 0, 0, "$name - no API call hung";
is_deeply \@accepted, [map { "m$_" } 1 .. 16],
    "$name - the first 16 pushes fill the inbox of 16 and are accepted";
is scalar(@refused), 4, "$name - then pushes are refused";
is_deeply [grep { !/^200 / } @answers],
    [('503 {"code":-500,"message":"a worker\'s inbox is full, push refused"}')
     x @refused], "$name - refused with 503, code -500 and the reason";

# the resumed worker drains its inbox; then a last push reaches everyone
my @p = $victim->read_pushes(16, T(3));
is_deeply [map { $_->{body} } @p], \@accepted,
    "$name - the stopped worker's client gets the 16 queued pushes in order";
push_ok('/goim/push/room?operation=1000&type=live&room=q', 'END',
        port => $ENV{TEST_NGINX_PORT3});
is_deeply [read_until($victim, 'END')], ['END'],
    "$name - ... and none of the refused ones";
for my $c (@others) {
    my @got = read_until($c, 'END');
    my @want_ok = grep { my $m = $_; grep { $_ eq $m } @got } @accepted;
    is_deeply \@want_ok, \@accepted,
        "$name - $c->{transport} member on running worker $c->{pid}: "
        . "every accepted push";
    is $got[-1], 'END', "$name - ... and the last push";
    my %rank;
    @rank{@got} = 0 .. $#got;
    ok !(grep { $rank{"m$_"} && $rank{'m' . ($_ + 1)}
                && $rank{"m$_"} > $rank{'m' . ($_ + 1)} } 1 .. 39),
       "$name - ... in order";
    note "$c->{transport} member on worker $c->{pid} also got refused pushes: "
        . join(',', grep { my $m = $_; grep { $_ eq $m } @got } @refused);
}
$_->close for @c;
--- error_log
a worker's inbox is full, push refused



=== TEST 7: a paced broadcast reaches every connection on every worker once
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => $i + 1, accepts => [1000, SENTINEL] };
});
is scalar(keys %{ pid_counts(@c) }), 4, "$name - clients on all 4 workers";
push_ok('/goim/push/all?operation=1000&speed=40', 'paced');
push_ok('/goim/push/all?operation=1000', 'fast');
for my $c (@c) {
    my @p = $c->read_pushes(2, T(3));
    is_deeply [sort map { $_->{body} } @p], ['fast', 'paced'],
        "$name - $c->{transport} client on worker $c->{pid}: both, once";
}
push_ok('/goim/push/all?operation=' . SENTINEL, 'END');
is_deeply collect($_, 'END'), [], "$name - nothing more on worker $_->{pid}"
    for @c;
$_->close for @c;



=== TEST 8: a stale kick does not close the newest connection of a key
--- perl
# A holds the key on worker W. D, a second connection on W, sends its auth
# while W is stopped; then B authenticates the key on another worker, which
# queues a kick for W. When W resumes it serves D's auth first (A goes, B is
# kicked through B's inbox), then the kick queued by B: it must not close D,
# the newest connection of the key.
my $tok = { key => 'race', accepts => [1000] };
my $a = goim_client(tcp => { %$tok, mid => 1 });
my $w = $a->{pid};
my ($d, $b);
for (1 .. 80) {
    my $c = goim_connect('tcp');
    my $pid = owner_pid($c) // next;
    if ($pid == $w && !$d) { $d = $c; next }
    if ($pid != $w && !$b) { $b = $c; next }
    $c->close;
    last if $d && $b;
}
ok $d && $b, "$name - a second connection on worker $w and one elsewhere"
    or return;
kill 'STOP', $w;
my $ok = eval {
    wait_until(sub { (proc_state($w) // '') eq 'T' }, T(2));
    $d->send_packet(OP_AUTH, JSON::PP::encode_json({ %$tok, mid => 3 }));
    sleep 0.1;
    GoimWorkers::goim_auth($b, { %$tok, mid => 2 });
    1;
};
my $err = $@;
kill 'CONT', $w;
die $err unless $ok;
ok $d->wait_op(OP_AUTH_REPLY, T(2)),
   "$name - the newest connection authenticated";
ok $a->expect_closed(T(2)), "$name - the oldest one kicked";
ok $b->expect_closed(T(2)), "$name - the middle one kicked";
{
    push_ok('/goim/push/keys?operation=1000&keys=race', 'to-newest');
    my ($p) = $d->read_pushes(1, T(2));
    is $p && $p->{body}, 'to-newest', "$name - the newest connection stays "
       . "and gets the key's pushes";
    is GoimWorkers::wait_until(sub {
        my ($st, $j) = api(GET => '/goim/online/total');
        $j && $j->{data}{conn_count} == 1 ? 1 : 0;
    }, T(1)), 1, "$name - online: one connection";
}
$_->close for $a, $b, $d;



=== TEST 9: a key push naming more than 64 connections of another worker
--- workers: 2
--- perl
# ngx_goim_dispatch_imsg() hands the keys of an inbox message on in runs of 64
my @c;
for my $i (0 .. 179) {
    my $c = goim_connect($i % 3 ? 'tcp' : 'ws');
    $c->auth({ key => "many$i", accepts => [1000] })
        or die "auth $i: " . ($c->error // '') . "\n";
    push @c, $c;
}
my %pid;
$pid{ owner_pid($_) // '?' }++ for @c;
ok +(grep { $_ > 64 } values %pid) >= 1, "$name - a worker holds more than "
   . "64 of them: " . join(', ', map { "$_: $pid{$_}" } sort keys %pid);
my $keys = join '', map { "&keys=many$_" } 0 .. 179;
my %served;
$served{ push_ok("/goim/push/keys?operation=1000$keys", "k$_",
                 name => "$name - push $_ naming 180 keys accepted") // '?' }++
    for 1 .. 2;
push_ok('/goim/push/all?operation=1000', 'end');
my @bad;
for my $i (0 .. $#c) {
    my @p = map { $_->{body} } $c[$i]->read_pushes(3, T(2));
    push @bad, "many$i: @p" unless "@p" eq 'k1 k2 end';
}
is_deeply \@bad, [], "$name - all 180 got both key pushes once, in order";
$_->close for @c;



=== TEST 10: a full inbox is logged once a second per worker, with a count
--- main_config
goim_shutdown_drain 1s;
goim_inbox_size 16;
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2 reuseport;
        location = /sub { goim_websocket; }
    }
    # the push API on a shared socket: the stopped worker takes no calls
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT3;
        location /goim/ {
            goim_logic_api;
            add_header X-Worker $pid always;
        }
    }
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1,
                       transports => ['tcp'], token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "r$i", room_id => 'live://r' };
});
my $w = $c[0]->{pid};
is $c[0]->heartbeat, scalar(@c), "$name - worker $w idle before the stop";

my ($refused, $start, $end) = (0);
my $stopped = kill 'STOP', $w;
my $ok = eval {
    ok wait_until(sub { (proc_state($w) // '') eq 'T' }, T(2)),
       "$name - worker $w stopped";
    # 16 fill its inbox, then every push is refused: many within a second
    # on each of the running workers
    $start = time;
    for my $n (1 .. 60) {
        my ($st) = api(POST =>
                       '/goim/push/room?operation=1000&type=live&room=r',
                       "m$n", port => $ENV{TEST_NGINX_PORT3},
                       timeout => T(2));
        $refused++ if ($st // 0) == 503;
    }
    $end = time;
    1;
};
my $err = $@;
kill 'CONT', $w if $stopped;
die $err unless $ok;

is $refused, 60 - 16, "$name - 44 pushes refused after the inbox of 16 filled";
# the workers' warn lines (the API's info lines answer each refusal)
my @lines =
    grep { /\[warn\] .*goim: a worker's inbox is full, push refused/ }
    split /\n/, error_log_text();
my %per_second;
for (@lines) {
    my ($sec, $pid) = m{^\S+ (\d\d:\d\d:\d\d) \[warn\] (\d+)#} or next;
    $per_second{"$pid $sec"}++;
}
is_deeply [grep { $per_second{$_} > 1 } sort keys %per_second], [],
    "$name - at most one line a second per worker ("
    . scalar(@lines) . " lines for $refused refusals in "
    . sprintf('%.1f', $end - $start) . ' s)';
ok @lines < $refused, "$name - fewer lines than refusals";
my $counted = 0;
$counted += $_ for map { /(\d+) push\(es\) refused since the last report/ }
                   @lines;
ok $counted >= 1 && $counted <= $refused,
   "$name - the lines count the refusals they stand for ($counted)";
$_->close for @c;
--- error_log
a worker's inbox is full, push refused
