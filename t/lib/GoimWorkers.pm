package GoimWorkers;

# Helpers for the multi-worker suites (t/04*.t): which worker process holds
# a connection, the running nginx's master and workers, authenticated
# clients on the reuseport listeners, push API calls that tell which worker
# served them, pipelined pushes, and bounded polling.
#
# Every wait is bounded and scaled by T() when TEST_NGINX_VALGRIND is set
# (nginx under memcheck is ~20 times slower).

use strict;
use warnings;

use IO::Socket::INET;
use IO::Select;
use JSON::PP ();
use Time::HiRes ();
use Exporter 'import';
use GoimClient qw(:ops http_request);

our @EXPORT = qw(
    T wait_until worker_servers master_pid worker_pids proc_state owner_pid
    owner_pids
    goim_client goim_connect api push_ok pipeline_push ws_frames
    spread_clients pid_counts
);

our $Scale = $ENV{TEST_NGINX_VALGRIND}
    ? ($ENV{TEST_NGINX_VALGRIND_SCALE} || 20) : 1;

my $JSON = JSON::PP->new->utf8->canonical;

# T($seconds): a timeout, scaled under valgrind.
sub T { return $_[0] * $Scale }

# wait_until($code, $timeout, $step): polls until $code returns true;
# returns its last value.
sub wait_until {
    my ($code, $timeout, $step) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    while (1) {
        my $v = $code->();
        return $v if $v;
        return $v if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep($step // 0.05);
    }
}

# worker_servers($block, drain => 1, http_extra => ...): for
# add_block_preprocessor: unless the block has its own, 4 workers,
# "goim_shutdown_drain 1s;" (with drain), goim_tcp on a reuseport stream
# listener and, on a reuseport http listener ($TEST_NGINX_PORT2),
# WebSocket and the logic API that names the serving worker in X-Worker,
# then http_extra.
sub worker_servers {
    my ($block, %o) = @_;
    $block->set_value(workers => 4) unless defined $block->{workers};
    $block->set_value(main_config => "goim_shutdown_drain 1s;\n")
        if $o{drain} && !defined $block->{main_config};
    $block->set_value(stream_config => <<'EOF') unless $block->{stream_config};
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT reuseport;
        goim_tcp;
    }
EOF
    $block->set_value(http_config => <<'EOF' . ($o{http_extra} // ''))
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2 reuseport;
        location = /sub { goim_websocket; }
        location /goim/ {
            goim_logic_api;
            add_header X-Worker $pid always;
        }
    }
EOF
        unless $block->{http_config};
}

sub _slurp {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    return scalar <$fh>;
}

sub master_pid {
    my $t = _slurp("$ENV{TEST_NGINX_SERVROOT}/logs/nginx.pid") // '';
    return $t =~ /^(\d+)/ ? $1 : undef;
}

# Live (not zombie) worker pids of the running master, sorted.
sub worker_pids {
    my $m = master_pid() // return ();
    my @w;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $t = _slurp($stat) // next;
        next unless $t =~ /^(\d+) \(.*\) (\S) (\d+) /;
        push @w, $1 if $3 == $m && $2 ne 'Z';
    }
    return sort { $a <=> $b } @w;
}

# One-letter state of a process (R, S, T, Z...), undef if gone.
sub proc_state {
    my ($pid) = @_;
    my $t = _slurp("/proc/$pid/stat") // return undef;
    return $t =~ /^\d+ \(.*\) (\S) / ? $1 : undef;
}

# Inodes of the server side of TCP connections: sockets whose local port
# is $server_port and whose peer is one of @clients ([$host, $port], IPv4)
# -> {port => inode}. `ss` filters in the kernel; without it,
# /proc/net/tcp is searched for each connection.  Either walks every
# socket of the host, which takes a good part of a second when it holds
# hundreds of thousands (a benchmark beside the tests): one `ss` answers
# for all connections of the server port, kept for a second for the
# lookups of other clients that follow.  A client not in it asks again;
# an entry of a closed connection names a socket no process holds, so
# its owner is not found and the caller asks again too.
my %SsCache;    # server port => [time, {client port => inode}]

sub _server_inodes {
    my ($server_port, @clients) = @_;
    my %ino;
    my $c = $SsCache{$server_port};
    if (!$c || Time::HiRes::time() - $c->[0] > 1
        || grep { !$c->[1]{ $_->[1] } } @clients) {
        $c = _ss_inodes($server_port);
    }
    if ($c) {
        for my $cl (@clients) {
            $ino{ $cl->[1] } = $c->[1]{ $cl->[1] } if $c->[1]{ $cl->[1] };
        }
        return \%ino;
    }
    # "sl: local rem st tx:rx tr:when retrnsmt uid timeout inode", addresses
    # as hex of the address in memory order, ports in hex
    my $t = _slurp('/proc/net/tcp') // return \%ino;
    for my $cl (@clients) {
        my $rem = join '', map { sprintf '%02X', $_ } reverse split /\./,
                  $cl->[0];
        my $needle = sprintf ':%04X %s:%04X ', $server_port, $rem, $cl->[1];
        my $at = -1;
        while (($at = index $t, $needle, $at + 1) >= 0) {
            my $eol = index $t, "\n", $at;
            my @f = split ' ', substr($t, $at, $eol - $at);
            # @f: port, rem:port, st, tx:rx, tr:when, retr, uid, timeout, inode
            if ($f[8]) { $ino{ $cl->[1] } = $f[8]; last }   # TIME_WAIT: 0
        }
    }
    return \%ino;
}

# [time, {client port => inode}] of the established connections to
# $server_port, or undef without ss
sub _ss_inodes {
    my ($server_port) = @_;
    my $t = Time::HiRes::time();
    my $out = `ss -Htne state established '( sport = :$server_port )' \
               2>/dev/null`;
    return undef if $?;
    my %ino;
    # [State] Recv-Q Send-Q Local:Port Peer:Port ... ino:N
    while ($out =~ /^\S*\s*\d+\s+\d+\s+\S+:(\d+)\s+\S+:(\d+)\s
                    .*?\bino:(\d+)/mgx) {
        $ino{$2} = $3 if $1 == $server_port && $3;
    }
    return $SsCache{$server_port} = [$t, \%ino];
}

# {inode => pid} of the sockets held by the running master's children.
sub _socket_owners {
    my $m = master_pid() // return {};
    my %owner;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $t = _slurp($stat) // next;
        next unless $t =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $m;
        my $pid = $1;
        opendir my $d, "/proc/$pid/fd" or next;
        for my $fd (readdir $d) {
            my $l = readlink "/proc/$pid/fd/$fd" // next;
            $owner{$1} = $pid if $l =~ /^socket:\[(\d+)\]$/;
        }
    }
    return \%owner;
}

# owner_pids(@clients): the nginx process holding each client's connection
# (any child of the master, old generations too; undef if none), in order.
sub owner_pids {
    my (@c) = @_;
    my (%by_server, @pids);
    for my $i (0 .. $#c) {
        my $sock = $c[$i]->sock or next;
        push @{ $by_server{ $sock->peerport } },
            [$i, $sock->sockhost, $sock->sockport];
    }
    my $owners = _socket_owners();
    for my $sp (keys %by_server) {
        my @cl = @{ $by_server{$sp} };
        my $ino = _server_inodes($sp, map { [@$_[1, 2]] } @cl);
        $pids[ $_->[0] ] = $owners->{ $ino->{ $_->[2] } // '' } for @cl;
    }
    return @pids;
}

# owner_pid($client [, $timeout]): the nginx process holding the
# connection; waits for it to be accepted. undef if none.
sub owner_pid {
    my ($c, $timeout) = @_;
    return wait_until(sub { (owner_pids($c))[0] }, $timeout // T(2), 0.02);
}

# goim_connect($transport, port => .., timeout => ..): a connected (and,
# for ws, upgraded) client that has not authenticated; dies on failure.
# tcp defaults to $TEST_NGINX_STREAM_PORT, ws to $TEST_NGINX_PORT2.
sub goim_connect {
    my ($transport, %o) = @_;
    my $port = $o{port} // ($transport eq 'ws' ? $ENV{TEST_NGINX_PORT2}
                                               : $ENV{TEST_NGINX_STREAM_PORT});
    my $c = GoimClient->new(transport => $transport, port => $port,
                            timeout => $o{timeout} // T(3));
    my $err = $c->connect;
    die "connect $transport:$port: $err\n" if $err;
    return $c;
}

# goim_client($transport, \%token, %connect_opts): authenticated; the
# client also remembers its token, key and worker pid ({pid}).
sub goim_client {
    my ($transport, $token, %o) = @_;
    my $c = goim_connect($transport, %o);
    return goim_auth($c, $token);
}

sub goim_auth {
    my ($c, $token) = @_;
    my $r = $c->auth($token)
        or die "auth ($c->{transport}): " . ($c->error // '') . "\n";
    $c->{token} = $token;
    $c->{key} = $r->{key};
    $c->{pid} = owner_pid($c);
    return $c;
}

# spread_clients(%o): authenticated clients until every worker holds at
# least `per_worker` of each transport in `transports` (default tcp and
# ws), at most `max` attempts. `token` is a sub ($i, $transport) -> token.
# Returns the clients; $o{workers} (the pids) must be given.
sub spread_clients {
    my (%o) = @_;
    my @workers = @{ $o{workers} };
    my @tr = @{ $o{transports} // [qw(tcp ws)] };
    my $per = $o{per_worker} // 1;
    my $max = $o{max} // 120;
    my (%have, @c);
    my $full = sub {
        for my $w (@workers) {
            for my $t (@tr) { return 0 if ($have{$w}{$t} // 0) < $per }
        }
        return 1;
    };
    for my $i (0 .. $max - 1) {
        last if $full->();
        my $t = $tr[$i % @tr];
        # only keep a connection that lands where one is still missing
        my $c = goim_connect($t, %{ $o{connect} // {} });
        my $pid = owner_pid($c) // die "no worker holds connection $i\n";
        if (($have{$pid}{$t} // 0) >= $per) {
            $c->close;
            next;
        }
        goim_auth($c, $o{token}->(scalar @c, $t));
        $have{$pid}{$t}++;
        push @c, $c;
    }
    return @c;
}

# pid_counts(@clients) -> {pid => n}
sub pid_counts {
    my %n;
    $n{ $_->{pid} // 'none' }++ for @_;
    return \%n;
}

# api($method, $path, $body, port => .., timeout => ..)
#   -> ($status, $json, $raw_body, $worker_pid)
# The worker pid comes from the X-Worker header ($pid) the test config adds.
sub api {
    my ($method, $path, $body, %o) = @_;
    my ($st, $raw, $h) = http_request($method => '127.0.0.1',
        $o{port} // $ENV{TEST_NGINX_PORT2}, $path, $body,
        timeout => $o{timeout} // T(3));
    my $j = defined $st ? eval { $JSON->decode($raw) } : undef;
    return ($st, $j, $raw, $h ? $h->{'x-worker'} : undef);
}

# push_ok($path, $body, %api_opts, name => ..): HTTP 200 with
# {"code":0,"message":""}; returns the serving worker's pid.
sub push_ok {
    my ($path, $body, %o) = @_;
    my $name = delete $o{name} // "push $path accepted";
    my ($st, $j, $raw, $pid) = api(POST => $path, $body // '', %o);
    Test::More::is_deeply([$st, $j], [200, { code => 0, message => '' }],
                          $name)
        or Test::More::diag("answer: " . ($raw // 'none'));
    return $pid;
}

# pipeline_push(\@requests, port => ..): the requests ([$path, $body], ...)
# written in one go on one keep-alive connection, so that one worker runs
# them back to back in one event-loop turn. Returns the status codes.
sub pipeline_push {
    my ($reqs, %o) = @_;
    my $port = $o{port} // $ENV{TEST_NGINX_PORT2};
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => T(3))
        or die "pipeline connect: $!\n";
    my $out = '';
    for my $i (0 .. $#$reqs) {
        my ($path, $body) = @{ $reqs->[$i] };
        $out .= "POST $path HTTP/1.1\r\nHost: localhost\r\n"
            . 'Content-Length: ' . length($body) . "\r\n"
            . ($i == $#$reqs ? "Connection: close\r\n" : '') . "\r\n$body";
    }
    local $SIG{PIPE} = 'IGNORE';
    syswrite $s, $out;
    my ($in, $sel) = ('', IO::Select->new($s));
    my $deadline = Time::HiRes::time() + T(5);
    while (Time::HiRes::time() < $deadline) {
        last unless $sel->can_read($deadline - Time::HiRes::time());
        my $n = sysread $s, my $buf, 65536;
        last unless $n;
        $in .= $buf;
    }
    close $s;
    return $in =~ m{^HTTP/1\.1 (\d{3}) }mg;
}

# ws_frames(@packets): how many WebSocket frames the packets came in (an
# OP_RAW frame of n packets marks each with raw_batch n).
sub ws_frames {
    my $frames = 0;
    $frames += 1 / ($_->{raw_batch} || 1) for @_;
    return sprintf '%.0f', $frames;
}

1;
