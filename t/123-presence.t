# Presence (goim_presence on, docs/PROTOCOL.md 2.12), node-wide: who is in
# a room, paged by a cursor, with mid, key, platform, node and since; the
# stats (connections, distinct members); joins, leaves and closes change
# them at once; over four workers the listing is the node's; the members
# of a worker killed with SIGKILL leave the listing with the purge.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimWorkers;
use Time::HiRes qw(time sleep);

skip_unless_module();

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value(main_config => "goim_presence on;\n"
                                     . "goim_server_id node-p;\n")
        unless defined $block->{main_config};
    worker_servers($block);
});

sub presence {
    my ($what, $query) = @_;
    my ($st, $j, $raw) = api(GET => "/goim/presence/$what?$query");
    return ($st, $j, $raw);
}

# every key listed for a room, page by page of $limit
sub keys_listed {
    my ($room, $limit) = @_;
    my (@keys, $cursor, $pages);
    $cursor = '';
    while (1) {
        my ($st, $j) = presence(room => "room=$room&limit=$limit"
                                        . "&cursor=$cursor");
        return ['bad answer'] unless $j && $j->{code} == 0;
        $pages++;
        push @keys, map { $_->{key} } @{ $j->{data}{list} };
        $cursor = $j->{data}{cursor};
        last if $cursor eq '' || $pages > 50;
    }
    return [sort @keys];
}

run_tests();

__DATA__

=== TEST 1: listing and stats over four workers, joins, leaves, closes
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => $i % 3, key => "p$i", platform => $i % 2 ? 'web' : 'ios',
             room_id => 'live://p', room_ids => ['group://p'] };
});
is scalar(keys %{ pid_counts(@c) }), 4, "$name - clients on all 4 workers";
my $n = @c;
my $t0 = time;
my ($st, $j) = presence(stats => 'room=group%3A%2F%2Fp');
is_deeply [$st, $j->{data}], [200, { room_id => 'group://p',
    connections => $n, members => 2 }],
    "$name - stats: every connection, distinct mids above 0 (1 and 2)";
($st, $j) = presence(stats => 'type=group&room=p');
is $j->{data}{connections}, $n, "$name - type and room, as push/room";
($st, $j) = presence(room => 'room=live://p&limit=3');
is scalar(@{ $j->{data}{list} }), 3, "$name - a page of 3";
isnt $j->{data}{cursor}, '', "$name - and a cursor";
my %byk = map { $_->{key} => $_ } @{ $j->{data}{list} };
my ($one) = values %byk;
(my $i = $one->{key}) =~ s/^p//;
is_deeply [ @$one{qw(mid platform node)} ],
    [ $i % 3, $i % 2 ? 'web' : 'ios', 'node-p' ],
    "$name - a member's mid, platform and node";
ok $one->{since} >= $t0 - 60 && $one->{since} <= time + 1,
    "$name - and since when";
is_deeply keys_listed('live://p', 3), [sort map { "p$_" } 0 .. $n - 1],
    "$name - the pages list every member once";
is_deeply keys_listed('live://p', 1000), [sort map { "p$_" } 0 .. $n - 1],
    "$name - one page";
is_deeply keys_listed('nope://1', 10), [], "$name - an empty room";
# leaves and closes
is $c[0]->leave_rooms('group://p')->{rooms}[0]{left}, JSON::PP::true(),
    "$name - p0 leaves group://p";
$c[1]->close;
my $got = wait_until(sub {
    my ($s, $x) = presence(stats => 'room=group://p');
    $x && $x->{data}{connections} == $n - 2 ? $x->{data} : undef;
}, T(3));
is_deeply $got, { room_id => 'group://p', connections => $n - 2,
                  members => 2 }, "$name - stats follow";
is_deeply keys_listed('group://p', 2), [sort map { "p$_" } 2 .. $n - 1],
    "$name - the listing too";
is_deeply $c[2]->join_rooms('group://q')->{rooms}[0]{joined},
    JSON::PP::true(), "$name - p2 joins group://q";
is_deeply keys_listed('group://q', 5), ['p2'], "$name - listed at once";
($st, $j) = presence(room => 'limit=5');
is_deeply [$st, $j->{code}], [400, -400], "$name - room required";
($st, $j) = presence(room => 'room=a&limit=1001');
is $st, 400, "$name - at most 1000 a page";
($st, $j) = presence(room => 'room=a&cursor=x');
is $st, 400, "$name - a bad cursor";
$_->close for @c;



=== TEST 2: a killed worker's members leave the listing with the purge
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "k$i", room_ids => ['group://k'] };
});
my $victim = $c[0]{pid};
my @live = grep { $_->{pid} != $victim } @c;
is_deeply keys_listed('group://k', 100), [sort map { $_->{key} } @c],
    "$name - all listed";
ok kill('KILL', $victim), "$name - worker $victim killed";
my $got = wait_until(sub {
    my $k = keys_listed('group://k', 100);
    @$k == @live ? $k : undef;
}, T(5));
is_deeply $got, [sort map { $_->{key} } @live],
    "$name - its members are gone, the others stay";
$_->close for @c;
--- error_log eval
[qr/\[alert\] .*worker process \d+ exited on signal 9/]



=== TEST 3: presence off: the routes say so
--- main_config
--- perl
my ($st, $j) = presence(stats => 'room=a');
is_deeply [$st, $j->{code}, $j->{message}],
    [404, -404, 'presence is off (goim_presence on)'], "$name - stats";
($st, $j) = presence(room => 'room=a');
is $st, 404, "$name - listing";
