# A graceful drain loses nothing (README "Many workers, reload and
# crash"): many TCP and WebSocket clients in one room, room pushes with
# sequence numbers at a steady rate, and a reload (or `nginx -s quit`) in
# the middle. Every push the API answered with code 0 before a client's
# close arrived was received by that client: the room's merged batch and
# the old worker's inbox are written before the Close. A client that does
# not read cannot hold the drain longer than goim_shutdown_drain plus 5 s.
#
# The time a close "arrived" is bounded from below by the last look at the
# socket that did not see it yet. A push accepted after the worker took
# the connection out of the registry is not owed to it, and its answer can
# come a few milliseconds before the Close is written; so only pushes
# answered MARGIN before that bound are required. goim_room_flush is 1s
# here, so that a lost batch would hold pushes answered up to a second
# before the close, far outside the margin.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_request);
use GoimWorkers;
use IO::Select;
use Time::HiRes qw(time sleep);

skip_unless_module();

use constant MARGIN => 0.2;

add_block_preprocessor(sub { worker_servers(shift) });

# $n TCP and $n WebSocket clients in room live://d
sub room_clients {
    my ($n) = @_;
    my @c;
    for my $i (0 .. 2 * $n - 1) {
        my $t = $i % 2 ? 'ws' : 'tcp';
        my $c = goim_connect($t);
        $c->auth({ mid => $i + 1, key => "d$i", room_id => 'live://d',
                   accepts => [1000] })
            or die "auth $t $i: " . ($c->error // '') . "\n";
        push @c, { c => $c, t => $t, i => $i, got => [] };
    }
    return @c;
}

# Pushes "S<seq>" to the room at $rate a second and reads every client
# while $signal reaches the master after $before seconds; until every
# client was closed, or $limit seconds after the signal. Returns the
# answered pushes ([seq, answer time]) and the signal's time.
sub drain_run {
    my (%o) = @_;
    my @c = @{ $o{clients} };
    my $sel = IO::Select->new(map { $_->{c}->sock } @c);
    my %by_fd = map { fileno($_->{c}->sock) => $_ } @c;
    my (@answered, $signalled);
    my $seq = 0;
    my $start = time;
    my $next = $start;

    my $poll = sub {
        my $s = time;
        for my $fh ($sel->can_read(0)) {
            my $x = $by_fd{ fileno $fh };
            for my $p ($x->{c}->read_pushes(1e6, 0)) {
                push @{ $x->{got} }, $1 if $p->{body} =~ /^S(\d+)$/;
            }
            next unless $x->{c}->is_closed;
            # the close came after the last look that did not see it
            $x->{close_lo} = $x->{seen_open};
            $x->{closed_at} = time;
            $sel->remove($fh);
        }
        $_->{seen_open} = $s for grep { !$_->{c}->is_closed } @c;
    };

    while (1) {
        my $now = time;
        if (!$signalled && $now - $start >= $o{before}) {
            kill $o{signal}, master_pid();
            $signalled = time;
        }
        last if $signalled && (!$sel->count || $now - $signalled > $o{limit});
        if ($now >= $next) {
            $seq++;
            my ($st, $raw) = http_request(POST => '127.0.0.1',
                $ENV{TEST_NGINX_PORT2},
                '/goim/push/room?operation=1000&type=live&room=d', "S$seq",
                timeout => T(2));
            push @answered, [$seq, time]
                if $st && $st == 200 && $raw =~ /"code":0/;
            $next += 1 / $o{rate};
        }
        $poll->();
        sleep 0.002;
    }
    $poll->();
    return (\@answered, $signalled);
}

# The checks of a drain: each client closed (WebSocket: 1001), got its
# pushes once and in order, and missed none it was owed.
sub drain_checks {
    my ($name, $clients, $answered, $signalled, $drain) = @_;
    my (%missing, %owed, %margin, @unclosed, @late, @disorder, @code);
    for my $x (@$clients) {
        unless ($x->{c}->is_closed) {
            push @unclosed, "$x->{t} $x->{i}";
            next;
        }
        push @late, sprintf("%s %d after %.2fs", $x->{t}, $x->{i},
                            $x->{closed_at} - $signalled)
            if $x->{closed_at} - $signalled > $drain + T(1.5);
        push @code, "$x->{i}: " . ($x->{c}->close_code // 'none')
            if $x->{t} eq 'ws' && ($x->{c}->close_code // 0) != 1001;
        my @g = @{ $x->{got} };
        push @disorder, "$x->{t} $x->{i}: @g"
            if grep { $g[$_] <= $g[$_ - 1] } 1 .. $#g;
        my %got = map { $_ => 1 } @g;
        for my $a (@$answered) {
            next unless $a->[1] < $x->{close_lo};
            if ($a->[1] >= $x->{close_lo} - MARGIN) {
                # not owed for sure: only counted, for the note below
                $margin{total}++;
                next if $got{ $a->[0] };
                $margin{missing}++;
                $margin{gap} = $x->{close_lo} - $a->[1]
                    if $x->{close_lo} - $a->[1] > ($margin{gap} // 0);
                next;
            }
            $owed{ $x->{t} }++;
            push @{ $missing{ $x->{t} } }, "$x->{i}:S$a->[0]"
                unless $got{ $a->[0] };
        }
    }
    note "$name - pushes answered in the last " . MARGIN . " s before a "
        . "close: " . ($margin{total} // 0) . ", not received: "
        . ($margin{missing} // 0) . sprintf(' (at most %.1f ms before)',
                                            1000 * ($margin{gap} // 0));
    is_deeply \@unclosed, [], "$name - every client was closed by the server";
    is_deeply \@late, [], "$name - within goim_shutdown_drain";
    is_deeply \@code, [], "$name - WebSocket clients got close 1001";
    is_deeply \@disorder, [], "$name - pushes once each, in order";
    for my $t ('tcp', 'ws') {
        my @m = @{ $missing{$t} // [] };
        ok +($owed{$t} // 0) > 20 * @{[ grep { $_->{t} eq $t } @$clients ]},
            "$name - $t: " . ($owed{$t} // 0) . " pushes owed to the clients";
        is scalar(@m), 0, "$name - $t: none of them missing"
            or diag scalar(@m) . " missing (client:push): @m[0 .. ($#m < 40 ? $#m : 39)]";
    }
}

run_tests();

__DATA__

=== TEST 1: a reload loses no room push: batches and inboxes are written before the Close
--- workers: 2
--- main_config
goim_shutdown_drain 2s;
goim_room_flush 1s;
--- perl
my @c = room_clients(150);
my @w = worker_pids();
my ($answered, $at) = drain_run(clients => \@c, signal => 'HUP',
                                before => 1.5, rate => 25, limit => T(8));
ok @$answered > 60, "$name - " . scalar(@$answered) . " pushes answered 0";
drain_checks($name, \@c, $answered, $at, 2);
ok wait_until(sub { !grep { kill 0, $_ } @w }, T(5)),
   "$name - the old workers exited";
--- error_log
goim: server shutting down



=== TEST 2: nginx -s quit loses no room push either
--- workers: 2
--- main_config
goim_shutdown_drain 2s;
goim_room_flush 1s;
--- perl
my @c = room_clients(150);
my ($answered, $at) = drain_run(clients => \@c, signal => 'QUIT',
                                before => 1.5, rate => 25, limit => T(8));
ok @$answered > 30, "$name - " . scalar(@$answered) . " pushes answered 0";
drain_checks($name, \@c, $answered, $at, 2);
--- error_log
goim: server shutting down



=== TEST 3: a paced broadcast reaches the connections the drain closes before its pace does
--- workers: 2
--- main_config
goim_shutdown_drain 1s;
--- perl
my @c = room_clients(50);
my @w = worker_pids();
# 100 connections at 10 a second: 10 s, far longer than the drain
push_ok('/goim/push/all?operation=1000&speed=10', 'B1');
kill 'HUP', master_pid();
my (@missing, @open);
for my $x (@c) {
    my $c = $x->{c};
    my $closed = $c->expect_closed(T(8));
    push @open, $x->{i} unless $closed;
    my @b = grep { $_->{body} eq 'B1' } $c->read_pushes(10, 0);
    push @missing, "$x->{t} $x->{i}" unless @b == 1;
}
is_deeply \@open, [], "$name - every client was closed by the drain";
is_deeply \@missing, [], "$name - each got the broadcast once, before its close";
ok wait_until(sub { !grep { kill 0, $_ } @w }, T(5)),
   "$name - the old workers exited";



=== TEST 4: a client that does not read holds the drain for at most 5 s more
--- workers: 1
--- main_config
goim_shutdown_drain 1s;
goim_send_queue 4096 64m;
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2 reuseport;
        location = /sub { goim_websocket; }
        location /goim/ {
            goim_logic_api;
            client_body_buffer_size 1m;
            client_max_body_size 1m;
        }
    }
--- perl
my ($w) = worker_pids();
my $slow = GoimClient->new(transport => 'ws', port => $ENV{TEST_NGINX_PORT2},
                           rcvbuf => 4096, timeout => T(3));
is $slow->connect, undef, "$name - connected";
ok $slow->auth({ key => 'slow', accepts => [1000] }), "$name - authenticated";
my $ok = goim_client(tcp => { key => 'ok', accepts => [1000] });
# far more than the socket buffers hold: the rest waits in the queue
my $n = 0;
$n++ for grep { (api(POST => '/goim/push/keys?operation=1000&keys=slow',
                     'x' x 500000))[0] == 200 } 1 .. 40;
is $n, 40, "$name - 20 MB pushed to it";
my $t0 = time;
kill 'HUP', master_pid();
ok $ok->expect_closed(T(4)), "$name - the reading client was closed";
ok wait_until(sub { !kill 0, $w }, T(10)), "$name - the old worker exited";
my $took = time - $t0;
ok $took < T(1 + 5 + 1.5), sprintf "$name - %.1f s after the reload", $took;
ok $took > 4, "$name - the unread queue got its 5 s";
$_->close for $ok, $slow;
--- error_log
close timed out



=== TEST 5: a worker held up keeps to goim_shutdown_drain: the drain's share is by the clock, not by its ticks
--- workers: 1
--- main_config
goim_shutdown_drain 4s;
--- perl
my ($w) = worker_pids();
my @c = map { goim_client(tcp => { key => "h$_", accepts => [1000] }) }
            1 .. 200;
my $closed = sub { scalar grep { $_->expect_closed(0) } @c };
kill 'HUP', master_pid();
ok wait_until(sub { $closed->() }, T(3), 0.02),
   "$name - the drain began";
kill 'STOP', $w;
my $early = $closed->();
ok $early < 100, "$name - spread: $early of 200 closed when it was stopped";
# longer than the whole drain: no tick of it ran meanwhile
sleep 5;
kill 'CONT', $w;
my $t0 = time;
my @open = grep { !$_->expect_closed(T(8)) } @c;
my $took = time - $t0;
is scalar(@open), 0, "$name - every client was closed";
# ticks of 100 ms each closing their planned share would need 3 s more
ok $took < 1.5, sprintf "$name - the %d left closed %.2f s after it ran "
   . 'again', 200 - $early, $took;
ok wait_until(sub { !kill 0, $w }, T(5)), "$name - the old worker exited";
--- error_log
goim: shutting down, closing 200 connections over 4000 ms
