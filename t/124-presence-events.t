# Join and leave events (op 34, goim_presence_events, docs/PROTOCOL.md
# 1.14): a connection that watches op 34 gets one for each connection
# that joins or leaves one of its rooms (token, op 30, op 12, op 32,
# close), with the room, mid and key, on whichever worker either is; a
# member that does not watch op 34 gets none; events over the rate of a
# room are dropped and counted.
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
