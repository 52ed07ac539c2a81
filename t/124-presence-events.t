# Join and leave events (op 34, goim_presence_events, docs/PROTOCOL.md
# 1.14): a connection that watches op 34 gets one for each connection
# that joins or leaves one of its rooms (token, op 30, op 12, op 32,
# close), with the room, mid and key, on whichever worker either is; a
# member that does not watch op 34 gets none; events over the rate of a
# room are dropped and counted. The connections of a worker killed with
# SIGKILL leave too: the purge of its slot keeps their memberships, and
# a live worker tells their leaves, within the room's rate.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimWorkers;
use JSON::PP ();
use Time::HiRes qw(time sleep);

skip_unless_module();

use constant SENTINEL => 9999;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(main_config => "goim_presence_events 5;\n")
        unless defined $block->{main_config};
    worker_servers($block);
});

my $JSON = JSON::PP->new->canonical;

# the events a client got before the sentinel push to room $room, as
# "join|leave room key"
sub events {
    my ($c, $room) = @_;
    my ($type, $id) = $room =~ m{^(.*)://(.*)$};
    push_ok("/goim/push/room?operation=" . SENTINEL . "&type=$type&room=$id",
            'END', name => "sentinel to $room");
    my @got;
    my $deadline = time + T(3);
    while (1) {
        my ($p) = $c->read_pushes(1, $deadline - time);
        unless ($p) { push @got, 'NO SENTINEL'; last }
        last if $p->{op} == SENTINEL;
        if ($p->{op} != OP_PRESENCE) { push @got, "op $p->{op}"; next }
        my $e = eval { $JSON->decode($p->{body}) } // { event => 'bad' };
        push @got, "$e->{event} $e->{room_id} $e->{mid} $e->{key}";
    }
    return \@got;
}

# the sum of a goim_status series over the workers, those of pid
# $except left out
sub metric {
    my ($series, $except) = @_;
    my ($st, $body) = GoimClient::http_request(GET => '127.0.0.1',
        $ENV{TEST_NGINX_SERVER_PORT}, '/status');
    my $sum = 0;
    while ($body =~ /^goim_\Q$series\E\{worker="\d+",pid="(\d+)"[^}]*\} (\d+)$/mg) {
        $sum += $2 unless defined $except && $1 == $except;
    }
    return $sum;
}

# a client authenticated with $token on worker $pid (connections land
# where the kernel puts them: tried until one lands there)
sub client_on {
    my ($pid, $t, $token) = @_;
    for (1 .. 60) {
        my $c = goim_connect($t);
        if ((owner_pid($c) // 0) == $pid) {
            GoimWorkers::goim_auth($c, $token);
            return $c;
        }
        $c->close;
    }
    die "no connection landed on worker $pid\n";
}

# op 34 events a client gets within $timeout, until $n
sub read_events {
    my ($c, $n, $timeout) = @_;
    my @got;
    my $deadline = time + $timeout;
    while (@got < $n) {
        my ($p) = $c->read_pushes(1, $deadline - time);
        last unless $p;
        next unless $p->{op} == OP_PRESENCE;
        my $e = eval { $JSON->decode($p->{body}) } // { event => 'bad' };
        push @got, "$e->{event} $e->{room_id} $e->{mid} $e->{key}";
    }
    return \@got;
}

run_tests();

__DATA__

=== TEST 1: joins and leaves of every kind reach the watchers, once
--- workers
1
--- main_config
goim_presence_events 100;
--- perl
my @workers = worker_pids();
my $w = goim_client(tcp => { mid => 9, key => 'w', room_ids => ['g://1'],
                             accepts => [34] });
my $q = goim_client(ws => { mid => 8, key => 'q', room_ids => ['g://1'] });
my $a = goim_client(ws => { mid => 1, key => 'a', room_id => 'live://a',
                            room_ids => ['g://1'] });
my $b = goim_client(tcp => { mid => 2, key => 'b', room_id => 'g://1' });
$a->join_rooms('g://2');
$a->leave_rooms('g://1');
$b->change_room('g://3');
$b->change_room('g://1');
$b->close;
my $got = events($w, 'g://1');
is_deeply $got, ['join g://1 8 q', 'join g://1 1 a', 'join g://1 2 b',
                 'leave g://1 1 a', 'leave g://1 2 b', 'join g://1 2 b',
                 'leave g://1 2 b'],
    "$name - the watcher got each join and leave of its room once, in order"
    or diag explain $got;
is_deeply events($q, 'g://1'), [], "$name - a member not watching op 34: none";
$_->close for $w, $q, $a;



=== TEST 2: over four workers, and a sub to op 34
--- main_config
goim_presence_events 100;
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "e$i" };
});
is $c[0]->sub_ops(34), '34', "$name - op 14 adds op 34";
is $c[0]->join_rooms('g://w')->{rooms}[0]{joined}, JSON::PP::true(),
    "$name - the watcher joins";
$c[$_]->join_rooms('g://w') for 1 .. 3;
$c[$_]->leave_rooms('g://w') for 1 .. 3;
# from other workers through their inboxes: the order across workers is
# not kept
my $got = [sort @{ events($c[0], 'g://w') }];
is_deeply $got, [sort((map { "join g://w " . ($_ + 1) . " e$_" } 1 .. 3),
                      (map { "leave g://w " . ($_ + 1) . " e$_" } 1 .. 3))],
    "$name - joins and leaves on other workers too ("
    . join(',', map { $_->{pid} } @c[0 .. 3]) . ")" or diag explain $got;
$_->close for @c;



=== TEST 3: at most goim_presence_events a room a second
--- workers
1
--- perl
my $w = goim_client(tcp => { mid => 9, key => 'w', room_ids => ['g://r'],
                             accepts => [34] });
my $x = goim_client(tcp => { mid => 7, key => 'x' });
# the watcher's own join is in the past second: a new one begins
sleep 1.1;
# one burst, read in one go: join and leave ten times
my $burst = '';
for my $i (1 .. 10) {
    $burst .= GoimClient::pack_packet(OP_JOIN, '["g://r"]', seq => 2 * $i);
    $burst .= GoimClient::pack_packet(OP_LEAVE, '["g://r"]',
                                      seq => 2 * $i + 1);
}
$x->send_raw($burst);
my @r = map { $x->wait_op($_ % 2 ? OP_LEAVE_REPLY : OP_JOIN_REPLY) } 0 .. 19;
is scalar(grep { defined } @r), 20, "$name - 20 replies";
my $got = events($w, 'g://r');
is_deeply $got, ['join g://r 7 x', 'leave g://r 7 x', 'join g://r 7 x',
                 'leave g://r 7 x', 'join g://r 7 x'],
    "$name - 5 events that second, the rest dropped" or diag explain $got;
sleep 1.1;
$x->join_rooms('g://r');
is_deeply events($w, 'g://r'), ['join g://r 7 x'],
    "$name - the next second, events again";
$_->close for $w, $x;



=== TEST 4: a worker killed with SIGKILL: its connections' leaves reach the watchers on the other workers, within the rate
--- workers
2
--- main_config
goim_presence_events 3;
--- config
    location = /status { goim_status; }
--- perl
my @workers = worker_pids();
is scalar(@workers), 2, "$name - two workers";
my ($victim, $other) = @workers;
# two members on the victim in g://c (the watcher's room), one in g://d
my @m = (client_on($victim, 'tcp', { mid => 1, key => 'm1',
                                     room_ids => ['g://c', 'g://d'] }),
         client_on($victim, 'ws', { mid => 2, key => 'm2',
                                    room_id => 'g://c' }),
         client_on($victim, 'tcp', { mid => 3, key => 'm3',
                                     room_id => 'g://d' }));
my $w = client_on($other, 'tcp', { mid => 9, key => 'w',
                                   room_ids => ['g://c'], accepts => [34] });
is_deeply events($w, 'g://c'), [], "$name - the watcher joined last: no "
    . "event before the kill";
ok kill('KILL', $victim), "$name - worker $victim killed";
$_->expect_closed(T(3)) for @m;
my $got = [sort @{ read_events($w, 2, T(5)) }];
is_deeply $got, ['leave g://c 1 m1', 'leave g://c 2 m2'],
    "$name - the watcher got the leaves of the dead worker's members of "
    . "its room" or diag explain $got;
is_deeply events($w, 'g://c'), [], "$name - and nothing else (g://d's "
    . "leave is not its room's)";

# six members on the new worker, killed after a second: 3 leaves told
ok wait_until(sub { my @x = worker_pids(); @x == 2 && !grep { $_ == $victim } @x },
              T(3)), "$name - respawned";
my ($new) = grep { $_ != $other } worker_pids();
my @n = map { client_on($new, $_ % 2 ? 'ws' : 'tcp',
                        { mid => 10 + $_, key => "n$_",
                          room_id => 'g://c' }) } 1 .. 6;
events($w, 'g://c');
# the rate's window of their joins is over
sleep 1.1;
my $before = metric('presence_events_total', $new)
             + metric('presence_events_dropped_total', $new);
ok kill('KILL', $new), "$name - worker $new killed";
$_->expect_closed(T(3)) for @n;
ok wait_until(sub {
        metric('presence_events_total', $new)
        + metric('presence_events_dropped_total', $new) - $before >= 6
    }, T(5)), "$name - the 6 leaves were told or dropped";
$got = events($w, 'g://c');
is scalar(@$got), 3, "$name - 3 leaves reached the watcher" or diag explain $got;
is scalar(grep { /^leave g:\/\/c 1\d n\d$/ } @$got), 3,
    "$name - each a leave of one of them" or diag explain $got;
$_->close for $w;
--- error_log eval
[qr/\[alert\] .*worker process \d+ exited on signal 9/,
 qr/\[notice\] .*goim: purging registry slot \d+ of dead worker \d+/]



=== TEST 5: a reload: a watcher of the new generation sees the old one's members leave as they drain, and join again as they reconnect
--- workers
1
--- main_config
goim_presence_events 100;
goim_shutdown_drain 4s;
--- perl
use IO::Select;
my ($old) = worker_pids();
my @m = map { goim_client(tcp => { mid => $_, key => "m$_",
                                   room_id => 'g://r' }) } 1 .. 40;
ok kill('HUP', master_pid()), "$name - reload";
my $new;
ok wait_until(sub { ($new) = grep { $_ != $old } worker_pids(); $new },
              T(3)), "$name - a new worker";
my $w = client_on($new, 'tcp', { mid => 99, key => 'w',
                                 room_id => 'g://r', accepts => [34] });
my $tw = time;
# when each member saw its connection end (the drain closes a few every
# 100 ms over goim_shutdown_drain)
my %closed;
my $sel = IO::Select->new(map { $_->sock } @m);
my %by = map { ($_->sock => $_) } @m;
my $deadline = time + T(8);
while (keys %closed < @m && time < $deadline) {
    for my $s ($sel->can_read(0.05)) {
        my $c = $by{$s};
        next unless $c->expect_closed(0.05);
        $closed{ $c->{key} } = time;
        $sel->remove($s);
    }
}
is scalar(keys %closed), 40, "$name - every old connection closed";
my @after = sort grep { $closed{$_} > $tw + 0.3 } keys %closed;
ok @after >= 10, "$name - " . scalar(@after) . " of them closed after the "
   . "watcher joined";
my %got;
$got{$_}++ for @{ events($w, 'g://r') };
my @leaves = sort map { /^leave g:\/\/r \d+ (m\d+)$/ ? $1 : () } keys %got;
is_deeply [grep { $got{$_} > 1 } keys %got], [], "$name - each event once";
is_deeply [grep { !/^leave g:\/\/r \d+ m\d+$/ } keys %got], [],
    "$name - leaves of the old members only" or diag explain \%got;
my %told = map { $_ => 1 } @leaves;
is_deeply [grep { !$told{$_} } @after], [],
    "$name - a leave for each member closed after the watcher joined ("
    . scalar(@leaves) . " leaves)";
# the clients come back, to the new generation
my @back = map { goim_client(tcp => { mid => $_, key => "m$_",
                                      room_id => 'g://r' }) } 1 .. 40;
my $joins = [sort @{ events($w, 'g://r') }];
is_deeply $joins, [sort map { "join g://r $_ m$_" } 1 .. 40],
    "$name - a join for each reconnected member" or diag explain $joins;
$_->close for $w, @back;
