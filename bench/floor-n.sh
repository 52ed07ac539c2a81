#!/bin/sh
# floor-n.sh N [OUT]: the kernel's write floor with N loopback pairs
# open at once, as many as a bench-1m run has connections.
#
# goim-floor holds its pairs in one process, and a process may open
# 20,000 files here: so ceil(N / 19,000) instances run side by side,
# each with its share of the pairs and one writer (as many writing
# processes as bench-1m's nginx has workers at N). Their CPU per write()
# is what the kernel charges with N sockets' worth of TCP state, hash
# entries and processes competing for the 2 cores' caches, which the
# 10,000-pair floor does not see. The instances start together and
# connect, warm up and measure on their own; "overlap_s" is how long
# all of them were running at once (from the last start to the first
# end, their setups included).
#
# Writes one JSON line to OUT (stdout): pairs, instances, write_cpu_us
# (quiet reader, the mean over instances), active_write_cpu_us (the
# reader drains meanwhile), uring_write_cpu_us (a send through io_uring,
# 512 a call, quiet reader), active_fanout_ms_p50 (the median over
# instances of one round of their share), overlap_s, elapsed_s, ok.
# Run it in the namespace bench-1m makes (or on loopback with the port
# range for N / 19,000 x 19,000 connects per listener).

set -u

n=${1:?usage: floor-n.sh N [OUT]}
out=${2:-}
floor=${FLOOR:-build/goim-floor}
per=${FLOOR_N_PER:-19000}     # pairs per instance, at most
dir=$(mktemp -d /tmp/floor-n.XXXXXX) || exit 2
trap 'rm -rf "$dir"' EXIT

k=$(( (n + per - 1) / per ))
pairs=$(( (n + k - 1) / k ))

i=0
pids=""
t0=$(date +%s.%N)
while [ $i -lt $k ]; do
    ( s=$(date +%s.%N)
      "$floor" --pairs "$pairs" --size 64 --rounds 10 --batches 1 \
          --writers 1 >"$dir/$i.json" 2>"$dir/$i.log"
      echo "$s $(date +%s.%N) $?" >"$dir/$i.t" ) &
    pids="$pids $!"
    i=$((i + 1))
done
wait $pids
t1=$(date +%s.%N)

perl -MJSON::PP -e '
    my ($dir, $k, $pairs, $t0, $t1) = @ARGV;
    my (@q, @a, @u, @f, $last_start, $first_end);
    my $ok = 1;
    for my $i (0 .. $k - 1) {
        open my $fh, "<", "$dir/$i.json" or do { $ok = 0; next };
        my ($line) = grep { /^\{/ } <$fh>;
        my $j = eval { decode_json($line // "") };
        unless ($j && $j->{ok}) { $ok = 0; next }
        push @q, $j->{write_cpu_us};
        push @a, $j->{active}{write_cpu_us};
        push @u, $j->{io_uring}{write_cpu_us} if $j->{io_uring};
        push @f, $j->{active}{fanout_ms_p50};
        open my $t, "<", "$dir/$i.t" or do { $ok = 0; next };
        my ($s, $e) = split " ", scalar <$t>;
        $last_start = $s if !defined $last_start || $s > $last_start;
        $first_end = $e if !defined $first_end || $e < $first_end;
    }
    sub mean { my $s = 0; $s += $_ for @_; return @_ ? $s / @_ : undef }
    my @fs = sort { $a <=> $b } @f;
    print JSON::PP->new->canonical->encode({
        pairs => $pairs * $k, instances => $k + 0,
        write_cpu_us => mean(@q), active_write_cpu_us => mean(@a),
        uring_write_cpu_us => mean(@u),
        active_fanout_ms_p50 => @fs ? $fs[$#fs / 2] : undef,
        overlap_s => defined $first_end ? $first_end - $last_start : 0,
        elapsed_s => $t1 - $t0,
        ok => ($ok && @q == $k) ? JSON::PP::true : JSON::PP::false,
    }), "\n";
' "$dir" "$k" "$pairs" "$t0" "$t1" >"$dir/out.json" || exit 1
if [ -n "$out" ]; then
    cp "$dir/out.json" "$out"
else
    cat "$dir/out.json"
fi
grep -q '"ok":true' "$dir/out.json"
