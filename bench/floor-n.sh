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
# Once every instance has connected and warmed up, before their tests,
# they all write one message to each of their sockets at the same
# moment (goim-floor --sync), once with write(), once through io_uring
# (FLOOR_N_SYNC_FIRST says which first), readers quiet as stopped
# clients: the floor's own fan-out to N sockets with k processes on the
# machine's cores, its other users (an outside monitor here) included.
# sync_write_ms and sync_uring_ms are from the first instance's start
# to the last one's end; the "floor / cores" figure is the same work
# with the cores to itself. These rounds come after a pause, as a push
# does: sync_write_cpu_us and sync_uring_cpu_us, the CPU per send then,
# include the readers' immediate ACKs (TCP's quick ACK after an idle
# spell), which the tests' rounds, 10 ms apart, do not see. The first
# of the two rounds also grows the kernel's slab caches for a message
# parked in every socket, as a server's first push to stopped clients
# does (the tests' quiet rounds would have grown them), and the second
# finds them grown: FLOOR_N_SYNC_FIRST=uring makes the io_uring
# round go first (write by default); sync_first says which did.
#
# FLOOR_N_PERF=S records the first S seconds of the first sync round
# (perf record -a -g: the whole machine, the floor under its comm) into
# FLOOR_N_PERF_OUT (floor-n.perf.data), to set beside a profile of
# bench-1m's push (BENCH_1M_PERF). FLOOR_N_ROUNDS (10) is the tests'
# rounds: 1 to get to the profile sooner.
#
# Writes one JSON line to OUT (stdout): pairs, instances, write_cpu_us
# (quiet reader, the mean over instances), active_write_cpu_us (the
# reader drains meanwhile), uring_write_cpu_us (a send through io_uring,
# 512 a call, quiet reader), active_fanout_ms_p50 (the median over
# instances of one round of their share), sync_write_ms, sync_uring_ms,
# sync_write_cpu_us, sync_uring_cpu_us, sync_first, shuffled, overlap_s,
# elapsed_s, ok.
# Run it in the namespace bench-1m makes (or on loopback with the port
# range for N / 19,000 x 19,000 connects per listener).

set -u

n=${1:?usage: floor-n.sh N [OUT]}
out=${2:-}
floor=${FLOOR:-build/goim-floor}
per=${FLOOR_N_PER:-19000}     # pairs per instance, at most
first=${FLOOR_N_SYNC_FIRST:-write}  # the sync round that goes first
rounds=${FLOOR_N_ROUNDS:-10}
case "${FLOOR_N_SHUFFLE:-no}" in
    yes) shuffle=--shuffle ;;
    no)  shuffle="" ;;
    *)   echo "floor-n.sh: FLOOR_N_SHUFFLE is yes or no" >&2; exit 2 ;;
esac
dir=$(mktemp -d /tmp/floor-n.XXXXXX) || exit 2
trap 'rm -rf "$dir"' EXIT

k=$(( (n + per - 1) / per ))
pairs=$(( (n + k - 1) / k ))

mkdir "$dir/sync" || exit 2
i=0
pids=""
t0=$(date +%s.%N)
while [ $i -lt $k ]; do
    ( s=$(date +%s.%N)
      "$floor" --pairs "$pairs" --size 64 --rounds "$rounds" --batches 1 \
          --writers 1 --sync "$dir/sync" --sync-first "$first" $shuffle \
          >"$dir/$i.json" 2>"$dir/$i.log"
      echo "$s $(date +%s.%N) $?" >"$dir/$i.t" ) &
    pids="$pids $!"
    i=$((i + 1))
done

# sync_go STEP: once every live instance is ready for STEP, start them
sync_go() {
    while :; do
        ready=$(ls "$dir/sync" | grep -c "^ready$1\\.")
        live=0
        for p in $pids; do
            kill -0 "$p" 2>/dev/null && live=$((live + 1))
        done
        [ "$ready" -ge "$live" ] && break
        sleep 0.2
    done
    if [ "$1" = 1 ] && [ -n "${FLOOR_N_PERF:-}" ]; then
        # the whole machine (perf report --comm goim-floor for the
        # floor), started before the go: perf takes a while to begin
        perf record -q -a -F 499 -g \
            -o "${FLOOR_N_PERF_OUT:-floor-n.perf.data}" \
            -- sleep "$((FLOOR_N_PERF + 2))" >/dev/null 2>&1 &
        sleep 2
    fi
    # the instances' pids, from their files: one kill for all of them
    kill -USR1 $(ls "$dir/sync" | sed -n "s/^ready$1\\.//p") 2>/dev/null
}

sync_go 1
sync_go 2
wait
t1=$(date +%s.%N)

perl -MJSON::PP -e '
    my ($dir, $k, $pairs, $t0, $t1) = @ARGV;
    my (@q, @a, @u, @f, $last_start, $first_end, %sy);
    my $ok = 1;
    my $shuffled = 0;
    for my $i (0 .. $k - 1) {
        open my $fh, "<", "$dir/$i.json" or do { $ok = 0; next };
        my ($line) = grep { /^\{/ } <$fh>;
        my $j = eval { decode_json($line // "") };
        unless ($j && $j->{ok}) { $ok = 0; next }
        push @q, $j->{write_cpu_us};
        push @a, $j->{active}{write_cpu_us};
        push @u, $j->{io_uring}{write_cpu_us} if $j->{io_uring};
        push @f, $j->{active}{fanout_ms_p50};
        $shuffled++ if $j->{shuffled};
        if (my $y = $j->{sync}) {
            $sy{first} = $y->{first};
            for my $r ("write", "uring") {
                my ($b, $e) = ($y->{"${r}_start"}, $y->{"${r}_end"});
                $sy{$r}{b} = $b if !defined $sy{$r}{b} || $b < $sy{$r}{b};
                $sy{$r}{e} = $e if !defined $sy{$r}{e} || $e > $sy{$r}{e};
                $sy{$r}{n}++;
                $sy{$r}{cpu} += $y->{"${r}_cpu_us"};
            }
        }
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
        sync_write_ms => ($sy{write}{n} // 0) == $k
            ? ($sy{write}{e} - $sy{write}{b}) * 1e3 : undef,
        sync_uring_ms => ($sy{uring}{n} // 0) == $k
            ? ($sy{uring}{e} - $sy{uring}{b}) * 1e3 : undef,
        sync_first => $sy{first},
        sync_write_cpu_us => $sy{write}{n} ? $sy{write}{cpu} / $sy{write}{n}
            : undef,
        sync_uring_cpu_us => $sy{uring}{n} ? $sy{uring}{cpu} / $sy{uring}{n}
            : undef,
        shuffled => $shuffled == $k ? JSON::PP::true : JSON::PP::false,
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
