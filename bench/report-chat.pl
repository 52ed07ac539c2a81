#!/usr/bin/perl
# bench/report-chat.pl: one section of the chat benchmark's report
# (bench/run-chat.sh exports C_* and runs it; the section goes to
# stdout).  Exit 0 when the run was clean: every client ready, nothing
# missing, duplicated or misrouted, the server healthy.  Core Perl only.

use strict;
use warnings;
use JSON::PP;

my %e = map { (substr($_, 2) => $ENV{$_}) } grep { /^C_/ } keys %ENV;
my $out = $e{OUT};

sub load_json {
    open(my $f, '<', $_[0]) or return {};
    my $last;
    while (<$f>) { $last = $_ if /^\{/ }
    close $f;
    return $last ? (eval { decode_json($last) } || {}) : {};
}

sub int_sep {
    my $v = shift;
    return 'n/a' unless defined $v && $v ne '';
    my $s = sprintf('%.0f', $v);
    1 while $s =~ s/^(-?\d+)(\d{3})/$1,$2/;
    return $s;
}

sub num {
    my ($v, $d) = @_;
    return 'n/a' unless defined $v && $v ne '';
    return sprintf("%.${d}f", $v);
}

sub pids {
    open(my $f, '<', $_[0]) or return ();
    my $l = <$f> // '';
    close $f;
    return split ' ', $l;
}

sub snap {
    my %s;
    open(my $f, '<', $_[0]) or return \%s;
    while (<$f>) {
        my ($pid, $comm, $t) = split;
        $s{$pid} = [$comm, $t];
    }
    close $f;
    return \%s;
}

my $j = load_json("$out/chat.json");
my $c = $j->{chat} // {};
my $hz = $e{HZ} || 100;
my $n = $e{ONLINE} || 0;

# CPU over the publishing window by process group: ours by pid, the
# rest of the machine by command name
my ($s0, $s1) = (snap("$out/procs.0"), snap("$out/procs.1"));
my %ng = map { $_ => 1 } pids("$out/pids.nginx");
my %bg = map { $_ => 1 } pids("$out/pids.bench");
my ($cpu_ng, $cpu_bg, %others) = (0, 0);
for my $pid (keys %$s1) {
    my $d = $s1->{$pid}[1] - ($s0->{$pid} ? $s0->{$pid}[1] : 0);
    next if $d <= 0;
    if ($ng{$pid}) { $cpu_ng += $d }
    elsif ($bg{$pid}) { $cpu_bg += $d }
    else { $others{ $s1->{$pid}[0] } += $d }
}
my $wall = $e{T_M1} - $e{T_M0};
$wall = 1 if $wall <= 0;
my $busy = ($e{BUSY1} - $e{BUSY0}) / $hz / $wall;
my $oth = 0;
$oth += $_ for values %others;
my @top = grep { $others{$_} / $hz / $wall >= 0.01 }
          sort { $others{$b} <=> $others{$a} } keys %others;
splice(@top, 6) if @top > 6;
my $top = @top ? join(', ', map { sprintf('%s %.2f', $_, $others{$_} / $hz / $wall) } @top)
               : 'none above 0.01';

my $dur = $j->{duration} || 0;
my $deliv = $c->{delivered} // 0;
my $dps = $dur ? $deliv / $dur : 0;
my $pss_conn = $n ? ($e{PSS1} - $e{PSS0}) * 1024 / $n : undef;
my $rooms = $c->{rooms} // ($e{CONNS} + int(($e{CONNS} + $e{GROUP} - 1) / $e{GROUP}));
# the rooms of the connections online when the memory was sampled
my $rooms_on = $n + int(($n + $e{GROUP} - 1) / $e{GROUP});
my $per_room = defined $pss_conn && $e{PSS_ONE} ne '' && $rooms_on
    ? ($pss_conn - $e{PSS_ONE}) * $n / $rooms_on : undef;
my $slab = $e{SLAB1} - $e{SLAB0};
my $tcpmem = ($e{TCPMEM1} - $e{TCPMEM0}) * 4;

# a member missing a push it stayed online for is a loss; one that
# closed within 1 s after its excuse window may have left while the
# push was still on its way (late, shown apart: goim-bench --chat)
my $stayed = $c->{missing_stayed} // $c->{missing};
my $ok = ($j->{ready} // 0) >= $e{CONNS} && ($stayed // 1) == 0
         && ($j->{duplicates} // 1) == 0 && ($j->{misrouted} // 1) == 0
         && ($j->{join_refused} // 1) == 0
         && $e{ALIVE} eq 'true' && $e{LOST} == 0 && $e{SIGNALS} == 0
         && $e{ALERTS} == 0;

my @t = gmtime($e{STARTED});
my $date = sprintf('%04d-%02d-%02d %02d:%02d UTC', $t[5] + 1900, $t[4] + 1,
                   $t[3], $t[2], $t[1]);

my $p99 = $j->{lat_p99_ms};
my $target = sub {
    my ($v, $bound, $unit) = @_;
    return 'n/a' unless defined $v;
    return sprintf('%s (%.0f %s against ≤ %.0f %s)',
                   $v <= $bound ? '**met**' : '**missed**', $v, $unit,
                   $bound, $unit);
};

my $s = "\n## chat $date: " . int_sep($e{CONNS}) . " $e{TRANSPORT} connections, "
    . int_sep($e{DELIV}) . " deliveries/s asked, $e{PCT} % reconnecting a second"
    . ($ok ? '' : ' (NOT CLEAN, see below)') . "\n\n";
my $tree = $e{TREE} ? " + $e{TREE} uncommitted changes in ngx_goim_module/, proto/, config or tools/bench/" : '';
$s .= "rev $e{REV}$tree, module sha256 $e{SO}…, $e{ELAPSED} s in all, "
    . "$e{WORKERS} workers (multi_accept " . ($e{MULTI_ACCEPT} // "off")
    . "), $e{NPROC} cores shared with other work.\n\n";
$s .= "    $e{CMD_ONE}\n" if $e{CMD_ONE};
$s .= "    $e{CMD}\n\n";

$s .= "| figure | value |\n|---|---|\n";
$s .= "| connections ready / asked | " . int_sep($j->{ready}) . " / " . int_sep($e{CONNS})
    . " (goim_online after connecting: " . int_sep($n) . "; connected in $e{T_CONN} s) |\n";
$s .= "| rooms | " . int_sep($rooms) . " (" . int_sep($e{CONNS}) . " personal + "
    . int_sep($c->{groups}) . " groups of $e{GROUP}); token rooms refused: " . int_sep($j->{join_refused}) . " |\n";
$s .= "| room pushes asked / accepted (code 0) | " . int_sep($e{PUSH_RATE}) . "/s for "
    . num($dur, 1) . " s / " . int_sep($c->{pushes_ok}) . " = "
    . num($dur ? ($c->{pushes_ok} // 0) / $dur : undef, 0) . "/s; failed "
    . int_sep($c->{pushes_failed}) . ", unanswered " . int_sep($c->{pushes_unanswered})
    . ", unsent (no free API connection of $e{INFLIGHT}) " . int_sep($j->{unsent}) . " |\n";
$s .= "| API answer time p50 / p99 / max (request sent to answer read) | " . join(' / ', map { num($c->{$_}, 1) } qw(api_p50_ms api_p99_ms api_max_ms)) . " ms |\n";
$s .= "| group deliveries | **" . int_sep($dps) . "/s** (" . int_sep($deliv) . " in " . num($dur, 1) . " s) |\n";
$s .= "| reconnects (close + connect, same token) | " . int_sep($j->{reconnects}) . " (asked "
    . int_sep($e{RECONN}) . "/s = " . int_sep($e{RECONN} * $dur) . "); client errors " . int_sep($j->{client_errors}) . " |\n";
$s .= "| reconnect time p50 / p99 / max (close to the new auth reply) | " . join(' / ', map { num($c->{$_}, 1) } qw(reconnect_p50_ms reconnect_p99_ms reconnect_max_ms)) . " ms |\n";
$s .= "| (push, member) pairs expected | " . int_sep($c->{expected}) . " |\n";
$s .= "| delivered exactly once | **" . int_sep($deliv) . " = " . num(100 * ($c->{delivered_share} // 0), 3) . " %** |\n";
$s .= "| missing (member ready throughout) | **" . int_sep($c->{missing}) . "** = "
    . num(100 * (1 - ($c->{delivered_share_not_excused} // 0)), 4)
    . " % of the pairs not excused: **" . int_sep($stayed)
    . "** for members that stayed online, " . int_sep($c->{missing_left})
    . " for members that closed within 1 s after their excuse window |\n";
$s .= "| excused: member reconnecting, not delivered | " . int_sep($c->{excused})
    . " (and " . int_sep($c->{excused_but_delivered}) . " delivered although the member was reconnecting nearby) |\n";
$s .= "| duplicates / misrouted | " . int_sep($j->{duplicates}) . " / " . int_sep($j->{misrouted}) . " |\n";
$s .= "| latency p50 / p90 / p99 / max | " . join(' / ', map { num($j->{$_}, 1) } qw(lat_p50_ms lat_p90_ms lat_p99_ms lat_max_ms)) . " ms |\n";
$s .= "| p99 target | " . $target->($p99, 200, 'ms') . " |\n";
$s .= "| nginx CPU over publishing + drain | " . num($j->{server_cpu_s}, 1) . " s = **"
    . num($j->{cpu_us_per_delivery}, 2) . " µs per delivery** |\n";
$s .= "| goim-bench CPU (clients + publisher) over the same | " . num($j->{client_cpu_measure_s}, 1) . " s = "
    . num($deliv ? ($j->{client_cpu_measure_s} // 0) * 1e6 / $deliv : undef, 2) . " µs per delivery |\n";
$s .= "| nginx ΔPss after connecting (master + workers) | " . sprintf('%.1f MB', ($e{PSS1} - $e{PSS0}) / 1024)
    . " = **" . int_sep($pss_conn) . " B per connection** with its 2 rooms (ΔRSS "
    . int_sep($n ? ($e{RSS1} - $e{RSS0}) * 1024 / $n : undef) . " B) |\n";
$s .= "| memory target | " . $target->($pss_conn, 4096, 'B') . " |\n";
if (defined $per_room) {
    $s .= "| same connections in ONE room (calibration run) | " . int_sep($e{PSS_ONE})
        . " B per connection ⇒ **" . int_sep($per_room) . " B per room** (ΔPss difference × " . int_sep($n) . " connections online ÷ their "
        . int_sep($rooms_on) . " rooms; includes the second membership) |\n";
}
$s .= "| goim_zone used | " . sprintf('%.1f MB', ($e{SHM1} - $e{SHM0}) / 1048576) . " = "
    . int_sep($n ? ($e{SHM1} - $e{SHM0}) / $n : undef) . " B per connection (in the Pss above) |\n";
$s .= "| kernel: slab Δ / TCP pages Δ (whole machine, both socket ends) | "
    . sprintf('%.1f MB / %.1f MB', $slab / 1024, $tcpmem / 1024) . " = "
    . int_sep($n ? $slab * 1024 / $n : undef) . " / " . int_sep($n ? $tcpmem * 1024 / $n : undef) . " B per connection |\n";
$s .= "| the $e{NPROC} cores while publishing (" . num($wall, 1) . " s) | "
    . sprintf('busy %.2f cores: nginx %.2f, goim-bench %.2f, other processes %.2f', $busy,
              $cpu_ng / $hz / $wall, $cpu_bg / $hz / $wall, $oth / $hz / $wall) . " |\n";
$s .= "| other processes by name (cores) | $top |\n";
$s .= "| TIME_WAIT sockets on the machine before connecting | " . int_sep($e{TW}) . " |\n";
$s .= "| load average (1/5/15 min) | $e{LOAD0} at the start of publishing, $e{LOAD1} at its end |\n";
$s .= "| server health | master alive $e{ALIVE}, workers gone $e{LOST}, exited on signal $e{SIGNALS}, "
    . "alert/crit/emerg $e{ALERTS}, error $e{ERRORS}; listen overflows $e{OVF}; goim-bench exit $e{RC} |\n";

if (open(my $f, '<', "$out/perf.txt")) {
    my @l = <$f>;
    close $f;
    if (@l) {
        $s .= "\nperf (10 s of the workers while publishing, self time, top lines):\n\n";
        $s .= "    $_" for @l;
    }
}

if ($e{ALERTS} || $e{SIGNALS} || $e{ERRORS}) {
    $s .= "\nerror.log (first lines of alert/crit/emerg/error/signal):\n\n";
    if (open(my $f, '<', "$out/chat/logs/error.log")) {
        my $k = 0;
        while (<$f>) {
            next unless /\[(alert|crit|emerg|error)\]|exited on signal/;
            last if ++$k > 10;
            s/\s+$//;
            $s .= "    $_\n";
        }
    }
}

print $s;
print STDERR $s;

# the latest run's verdict and table for bench/RESULTS.md (bench/report.pl
# includes the file): each target met or its measured distance and cause
if ($e{LATEST}) {
    my $ng = $cpu_ng / $hz / $wall;
    my $bg = $cpu_bg / $hz / $wall;
    my $us_ng = $j->{cpu_us_per_delivery};
    my $us_bg = $deliv ? ($j->{client_cpu_measure_s} // 0) * 1e6 / $deliv
                       : undef;
    my $v = "Latest `make bench-chat` ($date, " . int_sep($e{CONNS})
        . " $e{TRANSPORT} connections each in a personal room and one "
        . "$e{GROUP}-member group, " . int_sep($e{DELIV})
        . " deliveries/s asked, "
        . "$e{PCT} % of the connections reconnecting a second; the whole "
        . "history is in bench/RESULTS-100k.md).\n\n";
    $v .= "- **Memory, ≤ 4 KB per connection with its two rooms:** "
        . $target->($pss_conn, 4096, 'B') . " (nginx ΔPss).\n";
    $v .= "- **" . int_sep($e{DELIV}) . " deliveries/s with p99 ≤ 200 ms:** ";
    if (defined $p99 && $p99 <= 200 && $dps >= 0.98 * $e{DELIV}) {
        $v .= "**met** (" . int_sep($dps) . "/s, p99 " . num($p99, 0)
            . " ms).\n";
    } else {
        $v .= "**missed**: " . int_sep($dps) . "/s delivered, p99 "
            . num($p99, 0) . " ms. The $e{NPROC} cores were "
            . sprintf('%.2f', $busy) . " busy: nginx " . sprintf('%.2f', $ng)
            . " cores (" . num($us_ng, 1) . " µs per delivery, the "
            . "reconnects, heartbeats and API requests included), goim-bench "
            . sprintf('%.2f', $bg) . " (" . num($us_bg, 1)
            . " µs per delivery), "
            . "other processes " . sprintf('%.2f', $oth / $hz / $wall) . ". ";
        if ($us_ng && $us_bg) {
            $v .= "At these costs the machine delivers at most "
                . int_sep($e{NPROC} * 1e6 / ($us_ng + $us_bg))
                . "/s with clients and server on it, and nginx alone "
                . "would need " . sprintf('%.2f', $e{DELIV} * $us_ng / 1e6)
                . " cores for " . int_sep($e{DELIV}) . "/s";
        }
        $v .= "; the latency is the wait of $e{WORKERS} workers and the client "
            . "processes for the 2 cores (p50 " . num($j->{lat_p50_ms}, 0)
            . " ms).\n";
    }
    $v .= "- **Exactness:** " . int_sep($c->{missing}) . " missing of "
        . int_sep($c->{expected}) . " pairs (" . int_sep($stayed)
        . " for a member that stayed online), "
        . int_sep($j->{duplicates}) . " duplicates, "
        . int_sep($j->{misrouted}) . " misrouted.\n";
    (my $t = $s) =~ s/^## /### /mg;
    if (open(my $l, '>', $e{LATEST})) {
        print $l $v, $t;
        close $l;
    }
}
exit($ok ? 0 : 1);
