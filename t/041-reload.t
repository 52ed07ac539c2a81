# Reload with live connections (docs/ARCHITECTURE.md, "reload and worker
# exit"): nginx
# with 4 workers is reloaded three times while TCP and WebSocket clients
# are connected and pushes keep flowing. The old workers keep delivering
# (pushes from the new generation reach them through the shared registry)
# until they close their goim connections over goim_shutdown_drain
# (WebSocket close 1001); the clients reconnect to the new workers, which
# receive. Nothing crashes, no push is duplicated or reordered on any
# connection. A zone resize at reload is refused and the old workers
# stay in service.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimWorkers;
use Time::HiRes qw(time sleep);

skip_unless_module();

add_block_preprocessor(sub { worker_servers(shift) });

sub conf_file { return "$ENV{TEST_NGINX_SERVROOT}/conf/nginx.conf" }

# Rewrites nginx.conf with $edit (a sub working on $_).
sub edit_conf {
    my ($edit) = @_;
    open my $in, '<', conf_file() or die $!;
    local $_ = do { local $/; <$in> };
    close $in;
    $edit->();
    open my $out, '>', conf_file() or die $!;
    print $out $_;
    close $out or die $!;
}

# Workers of a new generation are up: 4 workers, none of @old.
sub new_generation {
    my (@old) = @_;
    my %old = map { $_ => 1 } @old;
    my @w = worker_pids();
    return @w == 4 && !grep { $old{$_} } @w;
}

run_tests();

__DATA__

=== TEST 1: three reloads with live connections and pushes flowing
--- main_config
goim_shutdown_drain 2s;
--- perl
my $master = master_pid();
my (@inc, @fail);               # connections (incarnations), failed pushes
my $n = 0;                      # pushes so far (ids 1..$n)
my $gen = 0;                    # reloads so far
my @logical = map { { i => $_, key => "r$_",
                      transport => $_ % 2 ? 'ws' : 'tcp' } } 0 .. 11;
my %old_workers;                # reload -> pids before it

my $connect = sub {
    my ($l) = @_;
    my $c = goim_client($l->{transport} => { mid => $l->{i} + 1,
        key => $l->{key}, room_id => 'live://r', accepts => [1000] });
    my $inc = { c => $c, l => $l, gen => $gen, pid => $c->{pid},
                born => $n, room => [], key => [] };
    $l->{cur} = $inc;
    push @inc, $inc;
};
my $keys = join '', map { "&keys=$_->{key}" } @logical;
my $step = sub {
    $n++;
    for (["room?operation=1000&type=live&room=r", "R$n"],
         ["keys?operation=1000$keys", "K$n"]) {
        my ($st, $j, $raw) = api(POST => "/goim/push/$_->[0]", $_->[1]);
        push @fail, "$_->[1]: " . ($st // 'none') . ' ' . ($raw // '')
            unless ($st // 0) == 200;
    }
    for my $l (@logical) {
        my $inc = $l->{cur};
        my $c = $inc->{c};
        for my $p ($c->read_pushes(1000, 0)) {
            my ($kind, $id) = $p->{body} =~ /^([RK])(\d+)$/ or next;
            push @{ $inc->{$kind eq 'R' ? 'room' : 'key'} }, $id;
        }
        next unless $c->is_closed;
        $inc->{closed} = $n;
        $inc->{close_code} = $c->close_code;
        $c->close;
        $connect->($l);
    }
    sleep 0.01;
};
my $run = sub {
    my ($secs, $until) = @_;
    my $deadline = time + $secs;
    while (time < $deadline) {
        $step->();
        return 1 if $until && $until->();
    }
    return $until ? 0 : 1;
};

$connect->($_) for @logical;
my $spread = pid_counts(map { $_->{cur}{c} } @logical);
ok keys(%$spread) >= 2, "$name - clients on " . scalar(keys %$spread)
   . " workers";
$run->(0.3);

my %hup_at;
for my $r (1 .. 3) {
    my @old = worker_pids();
    $old_workers{$r} = { map { $_ => 1 } @old };
    $hup_at{$r} = $n;
    ok kill('HUP', $master), "$name - reload $r: HUP sent";
    $gen = $r;
    # until every connection of older generations was closed and replaced,
    # and the old workers are gone
    my $t0 = time;
    my $done = $run->(T(10), sub {
        !(grep { $_->{cur}{gen} < $r } @logical) && new_generation(@old);
    });
    ok $done, sprintf "$name - reload $r: old connections drained and "
       . "replaced, old workers exited (%.1fs)", time - $t0;
    is master_pid(), $master, "$name - reload $r: same master";
    $run->(0.3);
}
$run->(0.3);

is_deeply \@fail, [], "$name - every push accepted during the reloads";

# the last push reaches every connection
$step->();
my $last = $n;
for my $l (@logical) {
    my $inc = $l->{cur};
    my $deadline = time + T(2);
    until ((grep { $_ == $last } @{ $inc->{room} })
           && (grep { $_ == $last } @{ $inc->{key} })) {
        my ($p) = $inc->{c}->read_pushes(1, $deadline - time) or last;
        my ($kind, $id) = $p->{body} =~ /^([RK])(\d+)$/ or next;
        push @{ $inc->{$kind eq 'R' ? 'room' : 'key'} }, $id;
    }
    ok +(grep { $_ == $last } @{ $inc->{room} })
       && (grep { $_ == $last } @{ $inc->{key} }),
       "$name - $l->{key} ($l->{transport}) on a worker of generation 3 "
       . "gets the last pushes";
}

# every connection: its pushes once each, in order, without a gap
my @bad;
for my $inc (@inc) {
    for my $kind ('room', 'key') {
        my @ids = @{ $inc->{$kind} };
        for my $k (1 .. $#ids) {
            next if $ids[$k] == $ids[$k - 1] + 1;
            push @bad, "$inc->{l}{key} gen $inc->{gen} $kind: "
                . join(',', @ids);
            last;
        }
    }
}
is_deeply \@bad, [], "$name - " . scalar(@inc) . " connections: each got "
   . "its pushes once, in order, without a gap";

for my $r (1 .. 3) {
    my @old = grep { $_->{gen} == $r - 1 } @inc;
    my @closed = grep { defined $_->{closed} } @old;
    is scalar(@closed), scalar(@old),
       "$name - reload $r: all " . scalar(@old) . " connections of the "
       . "old generation closed by the server";
    my @ws = grep { $_->{l}{transport} eq 'ws' } @old;
    is_deeply [map { $_->{close_code} // 'none' } @ws], [(1001) x @ws],
        "$name - reload $r: WebSocket ones with close 1001";
    my @kept = grep {
        grep { $_ > $hup_at{$r} } @{ $_->{room} }, @{ $_->{key} }
    } @old;
    ok @kept >= 1, "$name - reload $r: " . scalar(@kept) . " old "
       . "connections kept receiving pushes after the reload";
    my @new = grep { $_->{gen} == $r } @inc;
    my @misplaced = grep { $old_workers{$r}{ $_->{pid} // 0 } } @new;
    is scalar(@misplaced), 0, "$name - reload $r: " . scalar(@new)
       . " reconnections landed on new workers";
    ok !(grep { !@{ $_->{room} } } grep { $_->{closed} } @new),
       "$name - reload $r: reconnected ones received before leaving";
}
$_->{cur}{c}->close for @logical;
--- error_log
goim: server shutting down
gracefully shutting down
--- no_error_log
exited on signal



=== TEST 2: a zone resize at reload is refused; the old workers stay; a valid reload works
--- main_config
goim_zone goim 8m;
goim_shutdown_drain 1s;
--- perl
my $master = master_pid();
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1,
                       transports => ['tcp'], token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "z$i", room_id => 'live://z',
             accepts => [1000] };
});
edit_conf(sub { s/goim_zone goim 8m;/goim_zone goim 16m;/ or die "no zone" });
kill 'HUP', $master;
ok wait_for_log(qr/goim zone "goim" cannot change its size .* restart nginx/,
                T(5)), "$name - the resize is refused with an emerg";
sleep 0.3;
is_deeply [worker_pids()], \@workers, "$name - the same workers serve on";
push_ok('/goim/push/room?operation=1000&type=live&room=z', 'still');
for my $c (@c) {
    my ($p) = $c->read_pushes(1, T(2));
    is $p && $p->{body}, 'still',
       "$name - client on worker $c->{pid} gets pushes";
}
is $c[0]->heartbeat, scalar(@c), "$name - online count intact";

# the right size again, a different inbox size: accepted
edit_conf(sub {
    s/goim_zone goim 16m;/goim_zone goim 8m;\ngoim_inbox_size 64;/ or die
});
kill 'HUP', $master;
ok wait_until(sub { new_generation(@workers) }, T(6)),
   "$name - the valid reload replaced the workers";
for my $c (@c) {
    ok $c->expect_closed(T(3)), "$name - old connection drained";
    $c->close;
}
my @d = map { goim_client(tcp => { mid => $_ + 1, key => "z$_",
                                   room_id => 'live://z' }) } 0 .. 3;
push_ok('/goim/push/room?operation=1000&type=live&room=z', 'new');
for my $c (@d) {
    my ($p) = $c->read_pushes(1, T(2));
    is $p && $p->{body}, 'new', "$name - reconnected client gets pushes";
}
is $d[0]->heartbeat, 4, "$name - online count of the new generation";
$_->close for @d;
--- error_log eval
[qr/\[emerg\] .*goim zone "goim" cannot change its size from 8388608 to 16777216 on reload: restart nginx instead/]



=== TEST 3: a worker's only connection is closed at once on reload (close 1001), not after a timeout
--- main_config
goim_shutdown_drain 2s;
--- perl
my @workers = worker_pids();
my @c = spread_clients(workers => \@workers, per_worker => 1,
                       transports => ['ws'], token => sub {
    my ($i) = @_;
    return { mid => $i + 1, key => "s$i", accepts => [1000] };
});
is scalar(keys %{ pid_counts(@c) }), 4, "$name - one connection per worker";
my $t0 = time;
kill 'HUP', master_pid();
my %took;
for my $c (@c) {
    $c->expect_closed(T(8));
    $took{$c} = time - $t0;
}
for my $c (@c) {
    ok $c->is_closed, "$name - worker $c->{pid}: connection closed";
    ok $took{$c} < T(1.5), sprintf "$name - worker $c->{pid}: closed "
       . "within the drain window (%.1fs)", $took{$c};
    is $c->close_code, 1001, "$name - worker $c->{pid}: with close 1001";
}
$_->close for @c;
ok wait_until(sub { new_generation(@workers) }, T(8)),
   "$name - the old workers exited";
