# The bench's floor (tools/goim-floor.c, bench/floor-n.sh): goim-floor
# --sync holds its fan-out rounds until it is told to go, --shuffle
# writes the sockets out of creation order, and floor-n.sh starts all of
# its instances' rounds together and reports them.  A
# 1,000,000-client run measures these last, after 20 minutes: a broken
# floor must fail here instead.
use strict;
use warnings;
use Test::More;
use FindBin;
use File::Temp qw(tempdir);
use JSON::PP qw(decode_json);
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my $root = "$FindBin::Bin/..";
my $floor = "$root/build/goim-floor";

plan skip_all => "build/goim-floor is not built" unless -x $floor;

# wait up to $secs for a file matching $re in $dir; its name or undef
sub wait_file {
    my ($dir, $re, $secs) = @_;
    my $end = time + $secs;
    while (time < $end) {
        opendir my $dh, $dir or die "$dir: $!";
        my ($f) = grep { /$re/ } readdir $dh;
        closedir $dh;
        return $f if defined $f;
        sleep 0.05;
    }
    return undef;
}

# --- TEST 1: goim-floor --sync waits for each go ---------------------------

my $dir = tempdir(CLEANUP => 1);
my $out = "$dir/out.json";
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', $out or die "$out: $!";
    exec $floor, '--pairs', 200, '--size', 64, '--rounds', 3,
        '--batches', 1, '--sync', $dir, '--sync-first', 'uring'
        or die "exec: $!";
}

my $r1 = wait_file($dir, qr/^ready1\.\d+$/, 30);
ok(defined $r1, 'ready for the first round');
is($r1, "ready1.$pid", 'named after the process to signal');

# a second's pause, then it waits: no second round without a go
sleep 1.5;
ok(!defined wait_file($dir, qr/^ready2\./, 0.1), 'holds until the go');

my $go1 = time;
kill 'USR1', $pid;
ok(defined wait_file($dir, qr/^ready2\.\d+$/, 30), 'ready for the second');
sleep 0.5;
kill 'USR1', $pid;

my $waited = 0;
while (waitpid($pid, WNOHANG) == 0 && $waited < 60) {
    sleep 0.1;
    $waited += 0.1;
}
is($? >> 8, 0, 'goim-floor exits 0');

open my $fh, '<', $out or die "$out: $!";
my $j = decode_json(join '', <$fh>);
close $fh;
ok($j->{ok}, 'every byte written was read');
is($j->{sync}{first}, 'uring', 'the io_uring round went first');
cmp_ok($j->{sync}{uring_start}, '>=', $go1 - 0.05,
       'the first round started at the go');
cmp_ok($j->{sync}{write_start}, '>', $j->{sync}{uring_end},
       'the second round after the first');
cmp_ok($j->{sync}{uring_cpu_us}, '>', 0, 'CPU per send through io_uring');
cmp_ok($j->{sync}{write_cpu_us}, '>', 0, 'CPU per write()');

# --- TEST 2: a bad --sync-first is refused ---------------------------------

system("$floor --sync-first both >/dev/null 2>&1");
is($? >> 8, 2, '--sync-first takes write or uring');

# --- TEST 3: floor-n.sh starts its instances together ----------------------

my $cmd = "cd $root && FLOOR=$floor FLOOR_N_PER=300 FLOOR_N_SYNC_FIRST=write"
        . " sh bench/floor-n.sh 900";
my $json = `$cmd`;
is($? >> 8, 0, 'floor-n.sh exits 0');
my $n = eval { decode_json($json) } // {};
ok($n->{ok}, 'all instances ok');
is($n->{instances}, 3, 'one instance per 300 pairs');
is($n->{pairs}, 900, 'all the pairs');
is($n->{sync_first}, 'write', 'write() first');
cmp_ok($n->{sync_write_ms} // 0, '>', 0, 'the fan-out by write()');
cmp_ok($n->{sync_uring_ms} // 0, '>', 0, 'the fan-out through io_uring');

# three instances of 300 sockets started together: the fan-out is the
# time of their writes, not of their setups seconds apart
cmp_ok($n->{sync_write_ms} // 1e9, '<', 1000, 'the rounds overlapped');

# --- TEST 4: --shuffle writes the sockets out of creation order -----------

# the accepted sockets' fds rise in the order they were made: a shuffled
# order goes back to an earlier one about every other socket
for my $shuffle (0, 1) {
    my $c = "$floor --pairs 400 --size 64 --rounds 2 --batches 1"
          . ($shuffle ? ' --shuffle' : '');
    my $o = `$c`;
    my $s = eval { decode_json($o) } // {};
    my $what = $shuffle ? 'shuffled' : 'in creation order';
    ok($s->{ok}, "$what: every byte written was read");
    is($s->{shuffled}, $shuffle ? JSON::PP::true : JSON::PP::false,
       "$what: says so");
    if ($shuffle) {
        cmp_ok($s->{order_descents} // 0, '>', 100,
               'shuffled: out of creation order');
    } else {
        is($s->{order_descents}, 0, 'in creation order: none out of it');
    }
}

# --- TEST 5: floor-n.sh passes FLOOR_N_SHUFFLE on --------------------------

$cmd = "cd $root && FLOOR=$floor FLOOR_N_PER=300 FLOOR_N_SHUFFLE=yes"
     . " FLOOR_N_ROUNDS=1 sh bench/floor-n.sh 600";
$json = `$cmd`;
is($? >> 8, 0, 'floor-n.sh shuffled exits 0');
$n = eval { decode_json($json) } // {};
ok($n->{ok}, 'shuffled: all instances ok');
is($n->{shuffled}, JSON::PP::true, 'every instance shuffled');
cmp_ok($n->{sync_uring_ms} // 0, '>', 0, 'shuffled: the fan-out');

done_testing();
