# Several rooms per connection with four workers (docs/PROTOCOL.md 1.14,
# docs/ARCHITECTURE.md 4): connections in overlapping rooms spread over
# the workers get each room push exactly once, online counts sum every
# room of every connection over the workers, and joins, leaves and
# closes move the counts.
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

add_block_preprocessor(sub { worker_servers(shift) });

# the pushes before the sentinel, as "op:body"
sub collect {
    my ($c) = @_;
    my @got;
    my $deadline = time + T(5);
    while (1) {
        my ($p) = $c->read_pushes(1, $deadline - time);
        unless ($p) { push @got, 'MISSING END'; last }
        last if $p->{op} == SENTINEL && $p->{body} eq 'END';
        push @got, "$p->{op}:$p->{body}";
    }
    return \@got;
}

sub online {
    my ($type, @rooms) = @_;
    my ($st, $j) = api(GET => "/goim/online/room?type=$type"
                              . join('', map { "&rooms=$_" } @rooms));
    return $j && $j->{data};
}

run_tests();

__DATA__

=== TEST 1: overlapping rooms over four workers: once per push, counts summed
--- perl
my @workers = worker_pids();
is scalar(@workers), 4, "$name - 4 workers";
my @c = spread_clients(workers => \@workers, per_worker => 1, token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "r$i",
             $i % 2 ? (room_id => 'live://1') : (),
             room_ids => ['group://all', "user://$i", 'group://all',
                          $i % 3 ? ('group://odd') : ()],
             accepts => [SENTINEL] };
});
is scalar(keys %{ pid_counts(@c) }), 4, "$name - clients on all 4 workers";
my $n = @c;
my $odd = grep { $_ % 3 } 0 .. $n - 1;
my $live = grep { $_ % 2 } 0 .. $n - 1;
push_ok('/goim/push/room?operation=1000&type=group&room=all', 'ALL');
push_ok('/goim/push/room?operation=1000&type=group&room=odd', 'ODD');
push_ok('/goim/push/room?operation=1000&type=live&room=1', 'L1');
push_ok("/goim/push/room?operation=1000&type=user&room=$_", "U$_")
    for 0 .. $n - 1;
push_ok('/goim/push/all?operation=' . SENTINEL, 'END');
for my $i (0 .. $n - 1) {
    my %want = ('1000:ALL' => 1, "1000:U$i" => 1,
                $i % 3 ? ('1000:ODD' => 1) : (),
                $i % 2 ? ('1000:L1' => 1) : ());
    my $got = collect($c[$i]);
    my %got;
    $got{$_}++ for @$got;
    is_deeply \%got, \%want, "$name - client $i (worker $c[$i]{pid}): "
        . "each of its rooms once" or diag explain $got;
}
is_deeply online('group', 'all', 'odd'), { all => $n, odd => $odd },
    "$name - group counts summed over the workers";
is_deeply online('live', 1), { 1 => $live }, "$name - live://1";
# every client leaves group://all, half close
for my $i (0 .. $n - 1) {
    if ($i % 2) {
        $c[$i]->close;
    } else {
        my $r = $c[$i]->leave_rooms('group://all');
        is $r->{rooms}[0]{left}, JSON::PP::true(), "$name - $i left";
    }
}
my $odd_open = grep { $_ % 3 && !($_ % 2) } 0 .. $n - 1;
my $got = wait_until(sub {
    my $o = online('group', 'all', 'odd');
    $o && $o->{all} == 0 && $o->{odd} == $odd_open ? $o : undef;
}, T(3));
is_deeply $got, { all => 0, odd => $odd_open },
    "$name - leaves and closes counted on every worker";
is_deeply online('live', 1), { 1 => 0 }, "$name - live://1 empty";
$_->close for @c;
