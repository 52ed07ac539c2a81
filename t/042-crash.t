# A worker killed with SIGKILL (docs/ARCHITECTURE.md, "reload and worker
# exit"): its
# clients see EOF, the master respawns it, and the new worker purges the
# dead worker's registry slot, so online counts drop its connections, no
# push is routed into the void, and pushes keep reaching every other
# connection once, in order. The purge also frees the pushes that were
# waiting in the dead worker's inbox.
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

add_block_preprocessor(sub {
    worker_servers(shift, drain => 1, http_extra => <<'EOF');
    # the push API on a shared socket: a stopped worker takes nothing here
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT3;
        location /goim/ {
            goim_logic_api;
            add_header X-Worker $pid always;
        }
    }
EOF
});

# The master replaced the dead worker: 4 workers, $dead not among them.
sub respawned {
    my ($dead) = @_;
    my @w = worker_pids();
    return @w == 4 && !grep { $_ == $dead } @w;
}

sub total {
    my ($st, $j) = api(GET => '/goim/online/total');
    return $j ? $j->{data}{conn_count} : -1;
}

# Pushes a client got before the sentinel broadcast, as "op:body".
sub collect {
    my ($c) = @_;
    my @got;
    my $deadline = time + T(3);
    while (1) {
        my ($p) = $c->read_pushes(1, $deadline - time);
        unless ($p) { push @got, 'NO SENTINEL'; last }
        last if $p->{op} == SENTINEL && $p->{body} eq 'END';
        push @got, "$p->{op}:$p->{body}";
    }
    return \@got;
}

run_tests();

__DATA__

=== TEST 1: SIGKILL: EOF for its clients, purge on respawn, counts and pushes right
--- perl
my @workers = worker_pids();
my $token = sub {
    my ($i) = @_;
    return { mid => 300 + $i % 3, key => "c$i", room_id => 'live://c',
             accepts => [1000, SENTINEL] };
};
my @c = spread_clients(workers => \@workers, per_worker => 1, token => $token);
is scalar(@c), 8, "$name - a TCP and a WebSocket client on each worker";
is total(), 8, "$name - 8 online";
my $victim = $c[0]{pid};
my @dead = grep { $_->{pid} == $victim } @c;
my @live = grep { $_->{pid} != $victim } @c;

ok kill('KILL', $victim), "$name - worker $victim killed";
for my $c (@dead) {
    ok $c->expect_closed(T(3)), "$name - its $c->{transport} client sees EOF";
}
ok wait_until(sub { respawned($victim) }, T(3)), "$name - worker respawned";
ok wait_for_log(qr/goim: purging registry slot \d+ of dead worker $victim\b/,
                T(3)), "$name - the new worker purged the dead one's slot";
my $t0 = time;
ok wait_until(sub { total() == @live }, T(2)), sprintf "$name - online "
   . "total counts the %d live clients (%.2fs)", scalar(@live), time - $t0;
my ($st, $j) = api(GET => '/goim/online/room?type=live&rooms=c');
is_deeply $j && $j->{data}, { c => scalar @live }, "$name - online/room too";
is $live[0]->heartbeat, scalar(@live), "$name - heartbeat too";

# pushes by every kind, naming the dead worker's keys and mids too
my $keys = join '', map { "&keys=$_->{key}" } @c;
push_ok("/goim/push/keys?operation=1000$keys", 'k');
push_ok('/goim/push/mids?operation=1000&mids=300,301,302', 'm');
push_ok('/goim/push/room?operation=1000&type=live&room=c', 'r');
push_ok('/goim/push/all?operation=1000', 'a');
push_ok('/goim/push/all?operation=' . SENTINEL, 'END');
for my $c (@live) {
    my $got = collect($c);
    is_deeply [sort @$got], ['1000:a', '1000:k', '1000:m', '1000:r'],
        "$name - $c->{transport} client on worker $c->{pid}: every push once"
        or diag explain $got;
}

# the dead worker's clients come back
my @back = map { goim_client($_->{transport}, $_->{token}) } @dead;
ok wait_until(sub { total() == @c }, T(2)), "$name - all back online";
push_ok('/goim/push/room?operation=1000&type=live&room=c', 'again');
for my $c (@live, @back) {
    my ($p) = $c->read_pushes(1, T(2));
    is $p && $p->{body}, 'again', "$name - $c->{transport} client on worker "
       . "$c->{pid} gets room pushes";
}
$_->close for @live, @back;
--- error_log eval
[qr/\[alert\] .*worker process \d+ exited on signal 9/,
 qr/\[notice\] .*goim: purging registry slot \d+ of dead worker \d+/]



=== TEST 2: two workers killed while room pushes flow: the others miss nothing
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 2,
                       transports => ['tcp', 'ws'], token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "f$i", room_id => 'live://f' };
});
my %pids = %{ pid_counts(@c) };
my @victims = (sort keys %pids)[0, 1];
my %victim = map { $_ => 1 } @victims;
my @live = grep { !$victim{ $_->{pid} } } @c;
my (@fail, %got);
my $n = 0;
my $push = sub {
    $n++;
    my ($st, $j, $raw) = api(POST => '/goim/push/room?operation=1000&type=live'
                             . '&room=f', "F$n");
    push @fail, "F$n: " . ($st // 'none') unless ($st // 0) == 200;
    for my $c (@live) {
        push @{ $got{$c} }, map { $_->{body} } $c->read_pushes(1000, 0);
    }
};
$push->() for 1 .. 10;
ok kill('KILL', @victims) == 2, "$name - workers @victims killed";
$push->() for 1 .. 10;
ok wait_until(sub { $push->(); !grep { !respawned($_) } @victims }, T(3)),
   "$name - both respawned";
my $t0 = time;
ok wait_until(sub { $push->(); total() == @live }, T(2)), sprintf "$name - "
   . "online total: %d live clients (%.2fs)", scalar(@live), time - $t0;
$push->() for 1 .. 10;
for my $v (@victims) {
    ok wait_for_log(qr/purging registry slot \d+ of dead worker $v\b/, T(2)),
       "$name - slot of $v purged";
}
is_deeply \@fail, [], "$name - all $n pushes accepted";
for my $c (@live) {
    my $deadline = time + T(2);
    while (($got{$c}[-1] // '') ne "F$n" && time < $deadline) {
        push @{ $got{$c} }, map { $_->{body} } $c->read_pushes(1, T(0.2));
    }
    is_deeply $got{$c}, [map { "F$_" } 1 .. $n], "$name - $c->{transport} "
       . "client on live worker $c->{pid}: all $n, in order, once";
}
$_->close for @c;
--- error_log eval
[qr/\[alert\] .*worker process \d+ exited on signal 9/]



=== TEST 3: the pushes queued for a killed worker are freed by the purge
--- main_config
goim_shutdown_drain 1s;
goim_zone goim 256k;
goim_inbox_size 16;
--- perl
my $big = 'x' x 3000;        # a slab page each in the zone
my (@fail, @c);
for my $cycle (1 .. 5) {
    my @workers = worker_pids();
    $_->close for @c;
    @c = spread_clients(workers => \@workers, per_worker => 1,
                        transports => ['tcp'], token => sub {
        my ($i) = @_;
        return { mid => $i + 1, key => "b$i", room_id => 'live://b' };
    });
    my $victim = $c[0]{pid};
    is $c[0]->heartbeat, 4, "$name - cycle $cycle: 4 members, worker $victim idle";
    kill 'STOP', $victim;
    wait_until(sub { (proc_state($victim) // '') eq 'T' }, T(2));
    for my $i (1 .. 16) {   # fills the stopped worker's inbox
        my ($st, $j, $raw) = api(POST =>
            '/goim/push/room?operation=1000&type=live&room=b', $big,
            port => $ENV{TEST_NGINX_PORT3});
        push @fail, "cycle $cycle push $i: " . ($st // 'none') . " "
            . ($raw // '') unless ($st // 0) == 200;
    }
    kill 'KILL', $victim;
    ok wait_until(sub { respawned($victim) }, T(3)),
       "$name - cycle $cycle: worker $victim killed with a full inbox, "
       . "respawned";
    ok wait_for_log(qr/purging registry slot \d+ of dead worker $victim\b/,
                    T(2)), "$name - cycle $cycle: its slot purged";
    # the others got the 16 pushes
    for my $c (@c[1 .. $#c]) {
        my @p = $c->read_pushes(16, T(2));
        push @fail, "cycle $cycle: worker $c->{pid} got " . scalar(@p)
            unless @p == 16;
    }
}
is_deeply \@fail, [], "$name - 5 x 16 pages held by killed workers: every "
   . "push accepted, no shared memory leaked";
$_->close for @c;
--- error_log eval
[qr/\[alert\] .*worker process \d+ exited on signal 9/]
--- no_error_log
shared zone exhausted
