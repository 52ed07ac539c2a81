# The registry's worker slots beyond one 64-bit word (README.md,
# goim_worker_slots; docs/ARCHITECTURE.md, "reload and worker exit"):
# nginx with 100 workers has 256 slots by default (twice the workers,
# whole words). Pushes by key, mid, room and to all reach a client on
# every one of the 100 workers once; a SIGKILLed worker of a slot past
# the first word is purged and the others keep receiving; a reload runs
# both generations at once (200 slots in use) and the new one's pushes
# reach the draining old one's clients until they are closed; a reload
# that needs more slots than the zone has is refused.
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

# 100 workers take a while to start and to stop
$Test::Goim::Timeout = 20 * $Test::Goim::Scale
    unless $ENV{TEST_NGINX_TIMEOUT};
$Test::Goim::QuitTimeout = 20 * $Test::Goim::Scale
    unless $ENV{TEST_NGINX_QUIT_TIMEOUT};
$Test::Goim::PerlTimeout = 180 * $Test::Goim::Scale
    unless $ENV{TEST_NGINX_PERL_TIMEOUT};

add_block_preprocessor(sub {
    my ($block) = @_;
    $block->set_value(workers => 100) unless defined $block->{workers};
    worker_servers($block, drain => 1, http_extra => <<'EOF');
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT3;
        location = /status { goim_status; }
    }
EOF
});

sub conf_file { return "$ENV{TEST_NGINX_SERVROOT}/conf/nginx.conf" }

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

# {pid => slot} of the live workers, from the status page
sub slots {
    my ($st, $j, $raw) = api(GET => '/status', undef,
                             port => $ENV{TEST_NGINX_PORT3});
    my %slot;
    $slot{$2} = $1
        while ($raw // '') =~ /^goim_online\{worker="(\d+)",pid="(\d+)"\}/mg;
    return \%slot;
}

sub total {
    my ($st, $j) = api(GET => '/goim/online/total');
    return $j ? $j->{data}{conn_count} : -1;
}

# A TCP client on each of @$workers: connections in batches, their owners
# looked up once a batch; the others are closed before they authenticate.
sub one_per_worker {
    my ($workers, $token) = @_;
    my %want = map { $_ => 1 } @$workers;
    my %got;
    for my $round (1 .. 30) {
        last if keys(%got) == keys(%want);
        my @batch = map { goim_connect('tcp') } 1 .. 100;
        my @pids;
        wait_until(sub {
            @pids = owner_pids(@batch);
            !grep { !defined } @pids;
        }, T(3), 0.1);
        for my $i (0 .. $#batch) {
            my $p = $pids[$i];
            if (defined $p && $want{$p} && !$got{$p}) {
                $got{$p} = $batch[$i];
            } else {
                $batch[$i]->close;
            }
        }
    }
    my @c = map { $got{$_} } sort { $a <=> $b } keys %got;
    for my $i (0 .. $#c) {
        my $t = $token->($i);
        my $r = $c[$i]->auth($t) or die "auth: " . ($c[$i]->error // '');
        @{ $c[$i] }{qw(token key)} = ($t, $r->{key});
    }
    my %pid = reverse %got;
    $_->{pid} = $pid{$_} for @c;
    return @c;
}

# $n authenticated TCP clients; their workers looked up once for all
# (a lookup per client would walk 100 workers' descriptors each time).
sub clients {
    my ($n, $token) = @_;
    my @c;
    for my $i (0 .. $n - 1) {
        my $c = goim_connect('tcp');
        my $t = $token->($i);
        my $r = $c->auth($t) or die "auth: " . ($c->error // '');
        @$c{qw(token key)} = ($t, $r->{key});
        push @c, $c;
    }
    my @pids = owner_pids(@c);
    $c[$_]{pid} = $pids[$_] for 0 .. $#c;
    return @c;
}

# Pushes a client got before the sentinel broadcast, as "op:body".
sub collect {
    my ($c) = @_;
    my @got;
    my $deadline = time + T(5);
    while (1) {
        my ($p) = $c->read_pushes(1, $deadline - time);
        unless ($p) { push @got, 'NO SENTINEL'; last }
        last if $p->{op} == SENTINEL && $p->{body} eq 'END';
        push @got, "$p->{op}:$p->{body}";
    }
    return \@got;
}

# Every push kind to the clients of @c; each must get each push once.
sub push_every_kind {
    my ($name, $tag, @c) = @_;
    my $keys = join '', map { "&keys=$_->{key}" } @c;
    my %mids = map { $_->{token}{mid} => 1 } @c;
    my $mids = join ',', sort { $a <=> $b } keys %mids;
    push_ok("/goim/push/keys?operation=1000$keys", "k$tag");
    push_ok("/goim/push/mids?operation=1000&mids=$mids", "m$tag");
    push_ok('/goim/push/room?operation=1000&type=live&room=s', "r$tag");
    push_ok('/goim/push/all?operation=1000', "a$tag");
    push_ok('/goim/push/all?operation=' . SENTINEL, 'END');
    my @bad;
    for my $c (@c) {
        my $got = collect($c);
        my $want = [sort map { "1000:$_$tag" } qw(a k m r)];
        push @bad, "worker $c->{pid}: @$got"
            unless "@{[sort @$got]}" eq "@$want";
    }
    is_deeply \@bad, [], "$name - " . scalar(@c) . " clients on as many "
        . "workers: a push of every kind once each";
}

run_tests();

__DATA__

=== TEST 1: 100 workers: routing by key, mid, room and to all; a worker of a high slot killed and purged
--- perl
my @workers = worker_pids();
is scalar(@workers), 100, "$name - 100 workers";
my $slots;
ok wait_until(sub { $slots = slots(); keys(%$slots) == 100 }, T(5)),
   "$name - 100 slots in use";
my @high = grep { $_ >= 64 } values %$slots;
is scalar(@high), 36, "$name - 36 of them past the first word";

# two clients per mid, on two workers: a mid's mask has several words
my @c = one_per_worker(\@workers, sub {
    my ($i) = @_;
    return { mid => 1000 + $i % 50, key => "s$i", room_id => 'live://s',
             accepts => [1000, SENTINEL] };
});
is scalar(@c), 100, "$name - a client on each worker";
ok wait_until(sub { total() == 100 }, T(3)), "$name - 100 online";
push_every_kind($name, 1, @c);

# a worker of a slot in the second word dies
my ($victim) = grep { $slots->{ $_->{pid} } >= 64 } @c;
my $vslot = $slots->{ $victim->{pid} };
ok kill('KILL', $victim->{pid}), "$name - worker $victim->{pid} of slot "
   . "$vslot killed";
ok $victim->expect_closed(T(3)), "$name - its client sees EOF";
my @live = grep { $_ != $victim } @c;
ok wait_until(sub {
    my @w = worker_pids();
    @w == 100 && !grep { $_ == $victim->{pid} } @w;
}, T(5)), "$name - worker respawned";
ok wait_for_log(qr/goim: purging registry slot $vslot of dead worker $victim->{pid}\b/,
                T(3)), "$name - slot $vslot purged";
ok wait_until(sub { total() == 99 }, T(3)), "$name - 99 online";
push_every_kind($name, 2, @live);
is scalar(keys %{ slots() }), 100, "$name - 100 slots in use again";
$_->close for @c;
--- error_log eval
[qr/\[alert\] .*worker process \d+ exited on signal 9/,
 qr/\[notice\] .*goim: purging registry slot \d+ of dead worker \d+/]



=== TEST 2: 100 workers reloaded: both generations in the registry, the new one's pushes reach the draining one
--- main_config
goim_shutdown_drain 30s;
--- perl
my $master = master_pid();
my @old_workers = worker_pids();
my %old_worker = map { $_ => 1 } @old_workers;
my $token = sub {
    my ($tag, $i) = @_;
    return { mid => 1 + $i, key => "$tag$i", room_id => 'live://g',
             accepts => [1000] };
};
# about 60 a worker: a draining worker closes one every 100 ms
my @old = clients(6000, sub { $token->('o', @_) });
my %on = %{ pid_counts(@old) };
ok keys(%on) >= 95, "$name - 6000 clients on " . scalar(keys %on)
   . " workers";
ok wait_until(sub { total() == 6000 }, T(3)), "$name - 6000 online";

ok kill('HUP', $master), "$name - reload";
ok wait_until(sub {
    (grep { !$old_worker{$_} } worker_pids()) == 100;
}, T(10)), "$name - 100 new workers";
# an old worker may accept before it sees the reload: its clients are old
my @new = clients(200, sub { $token->('n', @_) });
push @old, grep { $old_worker{ $_->{pid} // 0 } } @new;
@new = grep { !$old_worker{ $_->{pid} // 0 } } @new;
ok @new >= 150, "$name - " . scalar(@new) . " of 200 new clients on new "
   . "workers";

my $slots = slots();
my @both = keys %$slots;
my $top = (sort { $b <=> $a } values %$slots)[0];
ok @both > 100, "$name - " . scalar(@both) . " slots in use at once, "
   . "the highest $top";
ok $top >= 128, "$name - new workers in the third word and beyond";

my (@fail, $n);
for $n (1 .. 20) {
    my ($st, $j, $raw) = api(POST => '/goim/push/room?operation=1000'
                             . '&type=live&room=g', "R$n");
    push @fail, "R$n: " . ($raw // 'none')
        unless ($st // 0) == 200 && $j && $j->{code} == 0;
    sleep 0.1;
}
is_deeply \@fail, [], "$name - 20 room pushes accepted";
ok wait_until(sub {
    !grep { $old_worker{$_} } worker_pids();
}, T(15)), "$name - the old workers drained and exited";

# what each got, the closed ones' buffered pushes included
my (@bad, @kept);
my $all = join ',', map { "R$_" } 1 .. 20;
for my $c (@new) {
    my $got = join ',', map { $_->{body} } $c->read_pushes(20, T(2));
    push @bad, "new $c->{key}: $got" unless $got eq $all;
}
for my $c (@old) {
    push @bad, "old $c->{key}: not closed" unless $c->expect_closed(T(1));
    my @got = map { $_->{body} } $c->read_pushes(20, 0);
    my $want = join ',', map { "R$_" } 1 .. @got;
    push @bad, "old $c->{key}: @got" unless join(',', @got) eq $want;
    push @kept, $c if @got;
}
is_deeply \@bad, [], "$name - new clients: all 20 pushes; old ones: the "
   . "first ones in order, then closed";
ok @kept >= 100, "$name - " . scalar(@kept) . " old clients received "
   . "pushes of the new generation while draining";
is scalar(keys %{ slots() }), 100, "$name - 100 slots in use after";
ok wait_until(sub { total() == @new }, T(3)), "$name - " . scalar(@new)
   . " online";
$_->close for @old, @new;
--- error_log
gracefully shutting down
--- no_error_log
exited on signal



=== TEST 3: a reload that needs more slots than the zone has is refused; the workers serve on
--- workers: 4
--- perl
my $master = master_pid();
my @workers = worker_pids();
ok wait_until(sub { keys %{ slots() } == 4 }, T(5)), "$name - 4 slots in use";
my $c = goim_client(tcp => { mid => 1, key => 'x', room_id => 'live://x' });
edit_conf(sub { s/worker_processes 4;/worker_processes 40;/ or die });
kill 'HUP', $master;
ok wait_for_log(qr/goim zone "goim" has 64 worker slots, this configuration needs 128 .*restart nginx/,
                T(5)), "$name - refused with an emerg";
sleep 0.3;
is_deeply [worker_pids()], \@workers, "$name - the same workers serve on";
push_ok('/goim/push/room?operation=1000&type=live&room=x', 'still');
my ($p) = $c->read_pushes(1, T(2));
is $p && $p->{body}, 'still', "$name - pushes delivered";

# 40 workers fit in 64 slots when the directive says so
edit_conf(sub { s/worker_processes 40;/worker_processes 40;\ngoim_worker_slots 64;/ or die });
kill 'HUP', $master;
ok wait_until(sub {
    my @w = worker_pids();
    @w == 40 && !grep { my $o = $_; grep { $_ == $o } @workers } @w;
}, T(10)), "$name - goim_worker_slots 64: 40 new workers, the old gone";
ok $c->expect_closed(T(3)), "$name - old connection drained";
$c->close;
my $d = goim_client(tcp => { mid => 1, key => 'x', room_id => 'live://x' });
push_ok('/goim/push/room?operation=1000&type=live&room=x', 'new');
($p) = $d->read_pushes(1, T(2));
is $p && $p->{body}, 'new', "$name - pushes delivered after";
$d->close;
--- error_log eval
[qr/\[emerg\] .*goim zone "goim" has 64 worker slots, this configuration needs 128/]
