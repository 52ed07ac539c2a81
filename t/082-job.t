# goim-job end to end (docs/PROTOCOL.md 4.5, 5.6): Kafka
# (tools/kafka-mock) -> build/goim-job -> comets registered in Redis.
#
# Blocks 1-7 use fake comets: small HTTP servers forked here that decode
# each goim.CometPushBatch, log its items and answer as a script tells
# them (200, 503 with data.accepted, 400, delays), so the contract's
# answers and the exact request format can be checked.  The later blocks
# run the real comet (nginx with the module) and its WebSocket and TCP
# clients.
#
# Every process started here is stopped at the end of its block (and in
# END, whatever happened); every wait is bounded.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_request unpack_packets);
use GoimTest qw(client);
use GoimRedis qw(have_redis redis_start redis_stop rcli wait_until);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(time sleep);

my $build = repo_root() . '/build';
my $JobBin = $ENV{TEST_GOIM_JOB} || "$build/goim-job";
my $MockBin = "$build/kafka-mock";
my $ProduceBin = "$build/goim-produce";

for ($JobBin, $MockBin, $ProduceBin) {
    Test::More::plan(skip_all => "$_ is not built (make tools)") unless -x $_;
}
Test::More::plan(skip_all => 'redis-server and redis-cli are needed')
    unless have_redis();

use constant SECRET => 'job-secret-0123456789';
use constant TOPIC => 'goim-push-topic';

# TEST 15's certificates, made here: a CA, the comet's certificate for
# 127.0.0.1 signed by it, and another CA that signed nothing of ours.
use File::Temp qw(tempdir);
my $Certs = tempdir('goim-job-tls-XXXXXX', TMPDIR => 1, CLEANUP => 1);
{
    my $ec = '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes';
    open my $ext, '>', "$Certs/san.ext" or die "$Certs/san.ext: $!\n";
    print $ext "subjectAltName=IP:127.0.0.1\n";
    close $ext;
    system("cd $Certs && "
        . "openssl req -x509 $ec -subj /CN=goim-test-ca -days 1"
        . " -keyout ca.key -out ca.pem"
        . " && openssl req -x509 $ec -subj /CN=goim-other-ca -days 1"
        . " -keyout other.key -out other.pem"
        . " && openssl req $ec -subj /CN=comet-a -keyout comet.key"
        . " -out comet.csr"
        . " && openssl x509 -req -in comet.csr -CA ca.pem -CAkey ca.key"
        . " -CAcreateserial -days 1 -extfile san.ext -out comet.pem"
        . " >/dev/null 2>&1") == 0
        or Test::More::BAIL_OUT('openssl could not make the certificates');
    $ENV{TEST_NGINX_JOB_CA} = "$Certs/ca.pem";
    $ENV{TEST_NGINX_JOB_OTHER_CA} = "$Certs/other.pem";
    $ENV{TEST_NGINX_JOB_CERT} = "$Certs/comet.pem";
    $ENV{TEST_NGINX_JOB_KEY} = "$Certs/comet.key";
    $ENV{TEST_NGINX_JOB_TLS_PORT} = Test::Goim::_free_port();
}

my %Running;     # pid => what
my $Owner = $$;

sub stop_pid {
    my ($pid, $sig, $secs) = @_;
    return undef unless $pid && $Running{$pid};
    kill $sig // 'TERM', $pid;
    my $deadline = time + ($secs // 5);
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $Running{$pid};
            return $?;
        }
        sleep 0.02;
    }
    kill 'KILL', $pid;
    waitpid($pid, 0);
    delete $Running{$pid};
    return -1;
}

sub stop_all { stop_pid($_, 'KILL', 2) for keys %Running }

END { local $?; stop_all() if $$ == $Owner }

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or return '';
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh;
}

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Listen => 1, ReuseAddr => 1)
        or die "no free port: $!\n";
    my $port = $s->sockport;
    close $s;
    return $port;
}

# --- kafka-mock ---------------------------------------------------------------

my $KafkaPid;
sub kafka_pid { return $KafkaPid }

# Starts kafka-mock with the push topic in $parts partitions: its
# bootstrap address.
sub kafka_start {
    my ($parts) = @_;
    my $err = "$ENV{TEST_NGINX_SERVROOT}/kafka-mock.log";
    pipe(my $r, my $w) or die "pipe: $!\n";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        close $r;
        open(STDOUT, '>&', $w) && open(STDERR, '>', $err)
            or POSIX::_exit(127);
        exec($MockBin, '-b', '1', '-t', TOPIC . ':' . ($parts // 2))
            or POSIX::_exit(127);
    }
    close $w;
    $Running{$pid} = 'kafka-mock';
    $KafkaPid = $pid;
    my $sel = IO::Select->new($r);
    my $line = '';
    while ($line !~ /\n/ && $sel->can_read(10)) {
        sysread($r, $line, 256, length $line) or last;
    }
    my ($bootstrap) = $line =~ /^(127\.0\.0\.1:\d+)/
        or die "kafka-mock printed no address: $line\n";
    return $bootstrap;
}

# goim-produce with @args against $bootstrap: (exit code, output).
sub produce {
    my ($bootstrap, @args) = @_;
    my $out = `timeout 30 $ProduceBin -b $bootstrap @args 2>&1`;
    return ($? >> 8, $out);
}

sub produce_ok {
    my ($bootstrap, $what, @args) = @_;
    my ($rc, $out) = produce($bootstrap, @args);
    Test::More::is($rc, 0, "produced $what") or Test::More::diag($out);
}

# --- goim-job -----------------------------------------------------------------

our $JobLog;

# Starts goim-job with the block's defaults plus $extra directives and
# waits for "ready: assigned" (the group has given it the partitions)
# in its stderr, or in log => <its log_file>; secret => another secret.
sub job_start {
    my ($bootstrap, $extra, %o) = @_;
    my $root = $ENV{TEST_NGINX_SERVROOT};
    my $conf = "$root/job.conf";
    $JobLog = "$root/job.log";
    spew($conf, <<"EOF" . ($extra // ''));
kafka_brokers $bootstrap;
kafka_option session.timeout.ms 6000;
kafka_option heartbeat.interval.ms 500;
kafka_option reconnect.backoff.max.ms 200;
redis 127.0.0.1:$ENV{TEST_NGINX_PORT2};
internal_secret @{[ $o{secret} // SECRET ]};
registry_refresh 200ms;
request_timeout 1s;
retry_backoff 50ms 400ms;
drain_timeout 5s;
status_listen 127.0.0.1:$ENV{TEST_NGINX_PORT3};
EOF
    unlink $JobLog unless $o{append};
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $JobLog;
        open STDERR, '>&', \*STDOUT;
        exec($JobBin, '-c', $conf, '-l', 'debug') or POSIX::_exit(127);
    }
    $Running{$pid} = 'goim-job';
    $JobLog = $o{log} if $o{log};    # its log_file
    job_logged(qr/ready: assigned \d+ partitions/, 20)
        or die "goim-job is not ready:\n" . slurp($JobLog) . "\n";
    return $pid;
}

sub job_log_text { return slurp($JobLog) }
sub job_bin { return $JobBin }

# Waits up to $secs for $re in the job's log (counting from $from bytes).
sub job_logged {
    my ($re, $secs, $from) = @_;
    return wait_until(sub { substr(slurp($JobLog), $from // 0) =~ $re },
                      $secs // 5);
}

# GET /metrics: {name => value} ('name{labels}' as the key).
sub metrics {
    my ($st, $body) = http_request(GET => '127.0.0.1', $ENV{TEST_NGINX_PORT3},
                                   '/metrics');
    return undef unless $st && $st == 200;
    return { map { /^(\S+) (\S+)$/ ? ($1 => $2) : () }
             grep { !/^#/ } split /\n/, $body };
}

sub metric {
    my ($name) = @_;
    my $m = metrics() or return undef;
    return $m->{$name};
}

# sum of a per-partition metric
sub metric_sum {
    my ($name) = @_;
    my $m = metrics() or return undef;
    my $sum = 0;
    $sum += $m->{$_} for grep { /^\Q$name\E\{/ } keys %$m;
    return $sum;
}

# --- the registry -------------------------------------------------------------

# $rec_ttl: the record's "ttl" field (none when undef, as older nodes)
sub register {
    my ($server, $port, $ttl, $host, $rec_ttl) = @_;
    $host //= '127.0.0.1';
    my $rec = qq({"server":"$server","addr":"http://$host:$port)
            . qq(/goim/internal/push","weight":1,"conn_count":0,)
            . qq("ip_count":0,"addrs":[],"updated":) . time()
            . (defined $rec_ttl ? qq(,"ttl":$rec_ttl) : '') . '}';
    rcli('SET', "comet_$server", $rec, 'EX', $ttl // 30);
    rcli('SADD', 'comets', $server);
}

# --- a fake comet -------------------------------------------------------------
#
# Listens on $port; each POST's CometPushBatch is decoded into one line
# per item in $log:
#     <ok|no> push keys=a,b op=N [op:body,...]
#     <ok|no> room <room> [op:body,...]
#     <ok|no> broadcast op=N speed=N [op:body,...]
# "ok" for the items its answer accepted.  The answer comes from the
# first line of $script (removed when used): "200" (default), "503 K"
# (K accepted), "400", "403", "sleep S" (then 200), "close" (no answer).
# A request with a wrong secret, content type or Proto (ver 1, op 9) is
# logged as "BAD ..." and answered 403.

sub pb_varint {
    my ($buf, $i) = @_;
    my ($v, $shift) = (0, 0);
    while (1) {
        die "truncated varint\n" if $$i >= length $$buf;
        my $b = ord substr($$buf, $$i++, 1);
        $v |= ($b & 0x7f) << $shift;
        return $v unless $b & 0x80;
        $shift += 7;
    }
}

# protobuf fields as [number, value] pairs (varints and length-delimited)
sub pb_fields {
    my ($buf) = @_;
    my ($i, @f) = (0);
    while ($i < length $buf) {
        my $key = pb_varint(\$buf, \$i);
        my ($num, $wt) = ($key >> 3, $key & 7);
        if ($wt == 0) {
            push @f, [$num, pb_varint(\$buf, \$i)];
        } elsif ($wt == 2) {
            my $len = pb_varint(\$buf, \$i);
            die "truncated field\n" if $i + $len > length $buf;
            push @f, [$num, substr($buf, $i, $len)];
            $i += $len;
        } else {
            die "wire type $wt\n";
        }
    }
    return @f;
}

# Proto -> "[op:body,...]", or dies unless ver 1, op 9
sub pb_proto {
    my ($buf) = @_;
    my %p = (1 => 0, 2 => 0, 4 => '');
    $p{ $_->[0] } = $_->[1] for pb_fields($buf);
    die "Proto ver $p{1} op $p{2}\n" unless $p{1} == 1 && $p{2} == 9;
    my @pk = unpack_packets($p{4});
    for (@pk) {
        die "packet ver $_->{ver} seq $_->{seq}\n"
            unless $_->{ver} == 1 && $_->{seq} == 0;
    }
    return '[' . join(',', map { "$_->{op}:$_->{body}" } @pk) . ']';
}

sub pb_item {
    my ($buf) = @_;
    my ($f) = pb_fields($buf);
    my %m;
    my @keys;
    for (pb_fields($f->[1])) {
        if ($f->[0] == 1 && $_->[0] == 1) { push @keys, $_->[1] }
        else { $m{ $_->[0] } = $_->[1] }
    }
    my $proto = pb_proto($m{2} // '');
    return "push keys=" . join(',', @keys) . " op=" . ($m{3} // 0)
        . " $proto" if $f->[0] == 1;
    return "room $m{1} $proto" if $f->[0] == 2;
    return "broadcast op=" . ($m{1} // 0) . " speed=" . ($m{3} // 0)
        . " $proto";
}

sub fake_answer {
    my ($script) = @_;
    my @lines = split /\n/, slurp($script);
    my $line = shift(@lines) // '200';
    spew($script, join('', map { "$_\n" } @lines));
    return $line;
}

sub fake_serve {
    my ($c, $log, $script) = @_;
    my $buf = '';
    while (1) {
        while ($buf !~ /\r\n\r\n/) {
            sysread($c, $buf, 65536, length $buf) or return;
        }
        $buf =~ s/^(.*?)\r\n\r\n//s;
        my ($head, %h) = ($1);
        $h{ lc $1 } = $2 while $head =~ /^([^:\r\n]+):\s*(.*?)\r?$/mg;
        my $len = $h{'content-length'} // 0;
        while (length $buf < $len) {
            sysread($c, $buf, 65536, length $buf) or return;
        }
        my $body = substr($buf, 0, $len, '');
        my @items = eval { map { pb_item($_->[1]) } pb_fields($body) };
        my $bad = $@ ? "undecodable: $@"
                : $head !~ m{^POST /goim/internal/push HTTP/1\.1} ? 'request'
                : ($h{'x-goim-secret'} // '') ne SECRET ? 'secret'
                : ($h{'content-type'} // '') ne 'application/x-protobuf'
                    ? 'content type' : '';
        my $answer = $bad ? '403' : fake_answer($script);
        return if $answer eq 'close';
        sleep $1 if $answer =~ /^sleep ([\d.]+)/;
        my ($st, $acc) = $answer =~ /^(\d+)(?: (\d+))?/ ? ($1, $2)
                                                        : (200, undef);
        $acc //= $st == 200 ? @items : 0;
        open my $fh, '>>', $log or die;
        if ($bad) {
            $bad =~ s/\n//g;
            print $fh "BAD $bad\n";
        }
        print $fh(($_ < $acc ? 'ok' : 'no') . " $items[$_]\n") for 0 .. $#items;
        close $fh;
        my $code = $st == 200 ? 0 : -$st;
        my $json = qq({"code":$code,"message":"answer $st",)
                 . qq("data":{"accepted":$acc}});
        my $reason = { 200 => 'OK', 400 => 'Bad Request', 403 => 'Forbidden',
                       503 => 'Service Unavailable' }->{$st} // 'X';
        syswrite($c, "HTTP/1.1 $st $reason\r\nContent-Type: application/json"
                   . "\r\nContent-Length: " . length($json) . "\r\n\r\n$json");
    }
}

# Starts a fake comet: {pid, port, log, script}.
sub fake_comet {
    my ($server, %o) = @_;
    my $root = $ENV{TEST_NGINX_SERVROOT};
    my $f = { server => $server, port => $o{port} // free_port(),
              log => "$root/fake-$server.log",
              script => "$root/fake-$server.script" };
    spew($f->{script}, join('', map { "$_\n" } @{ $o{script} // [] }));
    spew($f->{log}, '') unless $o{keep_log};
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
        LocalPort => $f->{port}, Listen => 16, ReuseAddr => 1)
        or die "fake comet on $f->{port}: $!\n";
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        while (my $c = $srv->accept) {
            fake_serve($c, $f->{log}, $f->{script});
            close $c;
        }
        POSIX::_exit(0);
    }
    close $srv;
    $Running{$pid} = "fake comet $server";
    $f->{pid} = $pid;
    register($server, $f->{port}) unless $o{no_register};
    return $f;
}

sub fake_lines {
    my ($f, $re) = @_;
    return [ grep { !$re || $_ =~ $re } split /\n/, slurp($f->{log}) ];
}

# Waits until the fake comet logged $n lines matching $re.
sub fake_wait {
    my ($f, $re, $n, $secs) = @_;
    wait_until(sub { @{ fake_lines($f, $re) } >= $n }, $secs // 10);
    return fake_lines($f, $re);
}

# Bodies of the accepted ("ok") items' packets, in order.
sub ok_bodies {
    my ($f) = @_;
    return [ map { /\[(.*)\]$/ ? (map { (split /:/, $_, 2)[1] } split /,/, $1)
                               : () } @{ fake_lines($f, qr/^ok /) } ];
}

# A fresh redis-server per block, started before anything else.
add_block_preprocessor(sub {
    my $block = shift;
    redis_stop();
    redis_start($ENV{TEST_NGINX_PORT2});
});

run_tests();

__DATA__

=== TEST 1: PUSH, ROOM and BROADCAST reach the comets in the contract's format
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $ca = fake_comet('fa');
my $cb = fake_comet('fb');
my $job = job_start($kafka);
produce_ok($kafka, 'a push', '--type push --server fa --keys k1,k2 --op 1001');
fake_wait($ca, qr/push/, 1);
produce_ok($kafka, 'a room message', '--type room --room live://7 --op 1002');
fake_wait($cb, qr/room/, 1);
produce_ok($kafka, 'a broadcast', '--type broadcast --op 1003 --speed 9');
fake_wait($cb, qr/broadcast/, 1);
is_deeply(fake_lines($ca), [
    'ok push keys=k1,k2 op=1001 [1001:m1]',
    'ok room live://7 [1002:m1]',
    'ok broadcast op=1003 speed=4 [1003:m1]',
], "$name - comet fa got the push, the room and the broadcast (speed 9/2)");
is_deeply(fake_lines($cb), [
    'ok room live://7 [1002:m1]',
    'ok broadcast op=1003 speed=4 [1003:m1]',
], "$name - comet fb got the room and the broadcast, not the push");
produce_ok($kafka, 'a push to an unknown comet',
           '--type push --server nope --keys k --op 1001');
ok(job_logged(qr/comet "nope": no such comet in the registry/),
   "$name - a push to an unknown comet is logged");
wait_until(sub { (metric('goim_job_undeliverable_total') // 0) == 1 });
my $m = metrics();
is($m->{goim_job_undeliverable_total}, 1, "$name - and counted");
is($m->{goim_job_consumed_total}, 4, "$name - 4 consumed");
is($m->{goim_job_comets}, 2, "$name - 2 comets");
is($m->{goim_job_redis_up}, 1, "$name - redis up");
is($m->{goim_job_kafka_up}, 1, "$name - kafka up");
ok(wait_until(sub { (metric('goim_job_partition_stored_offset{partition="0"}')
                    // 0) == 4 }), "$name - offset 4 stored");
is(metric('goim_job_inflight_messages'), 0, "$name - nothing in flight");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
like(job_log_text(), qr/drained: every message finished.*offsets committed/s,
     "$name - drained and committed");
unlike(job_log_text(), qr/\[error\]/, "$name - no error in the log");
stop_all();

=== TEST 2: room messages keep their order and merge while a request is out
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $c = fake_comet('fa', script => [('sleep 0.2') x 5]);
my $job = job_start($kafka);
produce_ok($kafka, '60 room messages', '--type room --room live://1 -n 60');
fake_wait($c, qr/^ok/, 1);
wait_until(sub { @{ ok_bodies($c) } >= 60 }, 10);
is_deeply(ok_bodies($c), [map { "m$_" } 1 .. 60],
          "$name - m1..m60 once each, in order");
my $items = fake_lines($c, qr/^ok room live:\/\/1 /);
cmp_ok(scalar @$items, '<', 60, "$name - in fewer requests than messages")
    or diag(explain($items));
my $m = metrics();
is($m->{goim_job_room_merged_total}, 60 - @$items,
   "$name - merged = messages - batches");
is($m->{goim_job_room_batches_total}, scalar @$items,
   "$name - room batches counted");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 3: 503 with data.accepted: only the refused items are sent again
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $c = fake_comet('fa', script => ['sleep 0.5', '503 1', '503 0']);
my $job = job_start($kafka);
produce_ok($kafka, '3 pushes', '--type push --server fa --keys k -n 3');
wait_until(sub { @{ ok_bodies($c) } >= 3 }, 10);
is_deeply(fake_lines($c), [
    'ok push keys=k op=1000 [1000:m1]',
    'ok push keys=k op=1000 [1000:m2]',
    'no push keys=k op=1000 [1000:m3]',
    'no push keys=k op=1000 [1000:m3]',
    'ok push keys=k op=1000 [1000:m3]',
], "$name - m2 accepted once, m3 retried until accepted");
ok(job_logged(qr/comet fa down: 503 after 1 of 2 item\(s\): "answer 503"/),
   "$name - the 503 is logged with its message");
ok(job_logged(qr/comet fa up/, 5, index(job_log_text(), 'comet fa down')),
   "$name - and the comet up again");
my $m = metrics();
is($m->{goim_job_retries_total}, 2, "$name - 2 retries");
is($m->{goim_job_requests_failed_total}, 2, "$name - 2 failed requests");
is($m->{goim_job_requests_ok_total}, 2, "$name - 2 good ones");
is($m->{goim_job_undeliverable_total}, 0, "$name - nothing undeliverable");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 4: 400 and undecodable values: counted, skipped, offsets move on
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $c = fake_comet('fa', script => ['400']);
my $job = job_start($kafka);
produce_ok($kafka, 'a push', '--type push --server fa --keys k');
fake_wait($c, qr/^no/, 1);
produce_ok($kafka, '2 undecodable values', '--garbage -n 2');
produce_ok($kafka, 'another push', '--type push --server fa --keys k'
           . ' --body n');
fake_wait($c, qr/^ok/, 1);
is_deeply(fake_lines($c), [
    'no push keys=k op=1000 [1000:m1]',
    'ok push keys=k op=1000 [1000:n1]',
], "$name - the refused push is not sent again");
ok(job_logged(qr/comet fa refused 1 item\(s\) with 400: "answer 400"/),
   "$name - the 400 is logged");
ok(job_logged(qr{undecodable message goim-push-topic/0/1 \(\d+ bytes\):}
              . qr{ not a goim.PushMsg, skipped}),
   "$name - an undecodable message is logged with topic/partition/offset");
ok(wait_until(sub { (metric('goim_job_partition_stored_offset{partition="0"}')
                    // 0) == 4 }), "$name - offset 4 stored");
my $m = metrics();
is($m->{goim_job_decode_errors_total}, 2, "$name - 2 decode errors");
is($m->{goim_job_undeliverable_total}, 1, "$name - 1 undeliverable");
is($m->{goim_job_consumed_total}, 4, "$name - 4 consumed");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 5: an unreachable comet gets its messages, in order, once it listens
--- no_module
--- config
--- perl
my $kafka = kafka_start(2);
my $port = free_port();
register('fa', $port);
my $job = job_start($kafka);
produce_ok($kafka, '5 room messages', '--type room --room live://5 -n 5');
ok(job_logged(qr/comet fa down: 127\.0\.0\.1:$port connection failed/),
   "$name - the comet is logged down");
sleep 1;
is(metric('goim_job_inflight_messages'), 5, "$name - 5 messages in flight");
my $c = fake_comet('fa', port => $port);
wait_until(sub { @{ ok_bodies($c) } >= 5 }, 10);
is_deeply(ok_bodies($c), [map { "m$_" } 1 .. 5],
          "$name - all 5 delivered, in order, once");
ok(job_logged(qr/comet fa up/), "$name - the comet is logged up");
ok(wait_until(sub { metric('goim_job_inflight_messages') == 0 }),
   "$name - nothing in flight");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 6: a comet whose record expires is removed, its items undeliverable
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $port = free_port();
my $c = fake_comet('fb');
my $job = job_start($kafka);
register('fa', $port, 3);
ok(job_logged(qr/comet fa added/), "$name - a comet that does not listen");
produce_ok($kafka, '3 room messages', '--type room --room live://6 -n 3');
wait_until(sub { @{ ok_bodies($c) } >= 3 }, 5);
is_deeply(ok_bodies($c), ['m1', 'm2', 'm3'], "$name - the live comet got them");
ok(job_logged(qr/comet fa down/), "$name - the other one is down");
is(metric('goim_job_inflight_messages'), 3, "$name - 3 wait for it");
ok(job_logged(qr/comet fa removed \(its registry record is gone[^)]*/
              . qr/it does not answer\): \d+ queued item\(s\) undeliverable/,
              8),
   "$name - removed when its record expired (no \"ttl\" in it: at once)");
ok(wait_until(sub { metric('goim_job_inflight_messages') == 0 }),
   "$name - nothing in flight any more");
my $m = metrics();
is($m->{goim_job_comets}, 1, "$name - one comet left");
cmp_ok($m->{goim_job_undeliverable_total}, '>=', 1,
       "$name - undeliverable counted");
is($m->{'goim_job_partition_stored_offset{partition="0"}'}, 3,
   "$name - offset 3 stored");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 6b: Redis restarted empty: live comets are kept, a dead one goes
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $ca = fake_comet('fa', no_register => 1);
my $cb = fake_comet('fb', no_register => 1);
register('fa', $ca->{port}, 30, undef, 3);
register('fb', $cb->{port}, 30, undef, 3);
my $job = job_start($kafka);
ok(job_logged(qr/comet fb added/), "$name - two comets");
produce_ok($kafka, '2 room messages', '--type room --room live://r -n 2');
wait_until(sub { @{ ok_bodies($ca) } >= 2 && @{ ok_bodies($cb) } >= 2 });
# nothing written, nothing loaded: the registry is empty afterwards
redis_stop();
redis_start($ENV{TEST_NGINX_PORT2});
ok(job_logged(qr/comet fa: its registry record is missing/, 5)
   && job_logged(qr/comet fb: its registry record is missing/, 5),
   "$name - both records missing, logged");
my $t = time;
produce_ok($kafka, '2 more', '--type room --room live://r -n 2 --start 3');
produce_ok($kafka, 'a push to fa', '--type push --server fa --keys k --body p');
wait_until(sub { @{ ok_bodies($ca) } >= 5 && @{ ok_bodies($cb) } >= 4 });
is_deeply(ok_bodies($ca), ['m1', 'm2', 'm3', 'm4', 'p1'],
          "$name - the comet whose record Redis lost still gets room and push");
is_deeply(ok_bodies($cb), ['m1', 'm2', 'm3', 'm4'],
          "$name - and so does the other");
# past the records' ttl (3 s): the comets answer, so they stay
sleep 0.2 while time < $t + 4;
produce_ok($kafka, 'past the ttl', '--type room --room live://r -n 1 '
                                   . '--start 5');
wait_until(sub { @{ ok_bodies($ca) } >= 6 && @{ ok_bodies($cb) } >= 5 });
is(ok_bodies($ca)->[-1], 'm5', "$name - fa still gets them past the ttl");
is(ok_bodies($cb)->[-1], 'm5', "$name - fb too");
unlike(job_log_text(), qr/comet f[ab] removed/, "$name - none removed");
register('fb', $cb->{port}, 30, undef, 3);
ok(job_logged(qr/comet fb: its registry record is back/),
   "$name - a record written again is logged");
# fa dies: its record has been missing for longer than its ttl
stop_pid($ca->{pid}, 'KILL');
produce_ok($kafka, 'after fa died', '--type room --room live://r -n 1 '
                                    . '--start 6');
ok(job_logged(qr/comet fa removed \(its registry record is gone for \d+ s, /
              . qr/ttl 3 s, and it does not answer\)/, 8),
   "$name - removed once it does not answer either");
wait_until(sub { @{ ok_bodies($cb) } >= 6 });
is(ok_bodies($cb)->[-1], 'm6', "$name - the live one got it");
ok(wait_until(sub { metric('goim_job_inflight_messages') == 0 }),
   "$name - nothing in flight");
my $m = metrics();
is($m->{goim_job_comets}, 1, "$name - one comet left");
is($m->{goim_job_undeliverable_total}, 1,
   "$name - fa's last message counted undeliverable");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 7: at least once: what a drained job did not deliver comes again
--- no_module
--- config
--- perl
my $kafka = kafka_start(2);
my $c = fake_comet('fa');
my $job = job_start($kafka, "kafka_option auto.commit.interval.ms 200;\n");
produce_ok($kafka, '2 pushes',
           '--type push --server fa --keys k -n 2 --body a');
wait_until(sub { @{ ok_bodies($c) } >= 2 });
stop_pid($c->{pid}, 'KILL');
produce_ok($kafka, '3 more', '--type push --server fa --keys k -n 3 --body b');
ok(job_logged(qr/comet fa down/), "$name - the comet is down");
my $t = time;
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
cmp_ok(time - $t, '<', 8, "$name - within the drain timeout");
like(job_log_text(), qr/drain timeout: 3 message\(s\) still in flight/,
     "$name - the drain timeout is logged");
like(job_log_text(), qr/comet fa: 3 item\(s\) left undelivered/,
     "$name - the undelivered items are logged");
$c = fake_comet('fa', port => $c->{port}, keep_log => 1);
$job = job_start($kafka);
wait_until(sub { @{ ok_bodies($c) } >= 5 }, 10);
sleep 0.5;
is_deeply([sort @{ ok_bodies($c) }], ['a1', 'a2', 'b1', 'b2', 'b3'],
          "$name - the next job delivers b1..b3, and a1, a2 not again");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 8: metrics endpoint, SIGHUP reopens the log file, -t and config errors
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $root = $ENV{TEST_NGINX_SERVROOT};
my $job = job_start($kafka, "log_file $root/job-file.log;\n",
                    log => "$root/job-file.log");
my ($st, $body, $hdr) = http_request(GET => '127.0.0.1',
    $ENV{TEST_NGINX_PORT3}, '/metrics');
is($st, 200, "$name - GET /metrics: 200");
like($body,
     qr/^# TYPE goim_job_consumed_total counter\ngoim_job_consumed_total 0$/m,
     "$name - Prometheus text");
like($body, qr/^goim_job_assigned_partitions 1$/m, "$name - assigned");
produce_ok($kafka, '2 room messages (no comet)', '--type room -n 2');
ok(wait_until(sub {
       my $m = metrics();
       ($m->{goim_job_consumed_total} // 0) == 2
       && defined $m->{'goim_job_partition_lag{partition="0"}'}
       && $m->{'goim_job_partition_lag{partition="0"}'} == 0
       && $m->{'goim_job_partition_stored_offset{partition="0"}'} == 2
   }), "$name - consumed 2, lag 0, offset 2 stored (no comet to wait for)");
($st) = http_request(GET => '127.0.0.1', $ENV{TEST_NGINX_PORT3}, '/other');
is($st, 404, "$name - another path: 404");
($st) = http_request(POST => '127.0.0.1', $ENV{TEST_NGINX_PORT3},
                     '/metrics', 'x');
is($st, 405, "$name - POST: 405");
like(slurp("$root/job-file.log"), qr/ready: assigned 1 partitions/,
     "$name - the log goes to log_file");
rename("$root/job-file.log", "$root/job-file.log.1");
kill 'HUP', $job;
ok(wait_until(sub { slurp("$root/job-file.log") =~ /log file reopened/ }),
   "$name - SIGHUP: the log file is reopened");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
like(slurp("$root/job-file.log"), qr/exiting/,
     "$name - logged to the new file");

my $out = `@{[job_bin()]} -t -c $root/job.conf 2>&1`;
is($? >> 8, 0, "$name - -t: configuration ok");
spew("$root/bad.conf", "kafka_brokers x:1;\nredis r:1;\nbogus 1;\n");
$out = `@{[job_bin()]} -c $root/bad.conf 2>&1`;
is($? >> 8, 78, "$name - a bad configuration exits 78");
like($out, qr/bad\.conf: line 3: unknown directive "bogus"/,
     "$name - naming the file, line and directive");
spew("$root/bad.conf", "kafka_brokers x:1;\nredis r:1;\n"
     . "internal_secret s;\nkafka_option no.such.property 1;\n");
$out = `timeout 10 @{[job_bin()]} -c $root/bad.conf 2>&1`;
is($? >> 8, 70, "$name - an unknown librdkafka property: exit 70");
like($out, qr/kafka property "no\.such\.property" = "1": No such/,
     "$name - named in the log");
stop_all();

=== TEST 9: a wrong secret (403) is retried with backoff, nothing dropped
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $c = fake_comet('fa');
my $job = job_start($kafka, "kafka_option auto.commit.interval.ms 200;\n",
                    secret => 'wrong-secret');
produce_ok($kafka, '2 pushes', '--type push --server fa --keys k -n 2');
ok(job_logged(qr/comet fa down: HTTP 403: "answer 403"; retrying 2 item/),
   "$name - the 403 is logged once");
ok(wait_until(sub { (metric('goim_job_retries_total') // 0) >= 3 }),
   "$name - and retried");
my $m = metrics();
is($m->{goim_job_inflight_messages}, 2, "$name - both still in flight");
is($m->{goim_job_undeliverable_total}, 0, "$name - none given up");
is($m->{'goim_job_partition_stored_offset{partition="0"}'}, -1,
   "$name - no offset stored");
ok(@{ fake_lines($c, qr/^BAD secret$/) } >= 3
   && !@{ fake_lines($c, qr/^ok/) }, "$name - the comet accepted nothing");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0 after draining");
$job = job_start($kafka);
wait_until(sub { @{ ok_bodies($c) } >= 2 }, 10);
is_deeply(ok_bodies($c), ['m1', 'm2'],
          "$name - with the right secret the next job delivers both");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 10: a full comet queue pauses consumption; nothing dropped, in order
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $c = fake_comet('fa', script => [('sleep 0.1') x 30]);
my $job = job_start($kafka, "comet_queue_items 4;\nmax_pushes_per_request 2;\n"
                    . "partition_inflight 10;\n");
produce_ok($kafka, '100 pushes', '--type push --server fa --keys k -n 100');
my ($max_items, $max_inflight, $paused) = (0, 0, 0);
wait_until(sub {
    my $m = metrics() or return 0;
    my $q = $m->{'goim_job_comet_queue_items{comet="fa"}'} // 0;
    my $f = $m->{goim_job_inflight_messages} // 0;
    $max_items = $q if $q > $max_items;
    $max_inflight = $f if $f > $max_inflight;
    $paused ||= $m->{goim_job_paused};
    return @{ ok_bodies($c) } >= 100;
}, 30);
is_deeply(ok_bodies($c), [map { "m$_" } 1 .. 100],
          "$name - all 100 delivered once, in order");
ok(job_logged(qr/comet fa: queue full \(4 items, \d+ bytes\): /
              . qr/consumption paused/),
   "$name - the full queue is logged");
ok(job_logged(qr/comet fa: queue drained/), "$name - and its draining");
ok($paused, "$name - metrics showed consumption paused");
cmp_ok($max_items, '<=', 4, "$name - the queue never held more than 4 items");
cmp_ok($max_inflight, '<=', 10, "$name - never more than 10 in flight");
is(metric('goim_job_undeliverable_total'), 0, "$name - none undeliverable");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 11: held until Redis answers; outages keep the comets; a comet moves
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
# the registry survives the restarts of redis-server through its dump
my $c = fake_comet('fa');
rcli('SAVE');
redis_stop();
my $job = job_start($kafka);
ok(job_logged(qr/redis 127\.0\.0\.1:\d+ lost: /), "$name - Redis is down");
produce_ok($kafka, '3 room messages', '--type room --room live://h -n 3');
ok(wait_until(sub { (metric('goim_job_consumed_total') // 0) == 3 }),
   "$name - consumed");
is(metric('goim_job_inflight_messages'), 3,
   "$name - and held, since no registry was ever read");
is(metric('goim_job_redis_up'), 0, "$name - metrics: redis down");
redis_start($ENV{TEST_NGINX_PORT2});
wait_until(sub { @{ ok_bodies($c) } >= 3 }, 10);
is_deeply(ok_bodies($c), ['m1', 'm2', 'm3'],
          "$name - delivered once the registry is read");
like(job_log_text(), qr/registry loaded: 1 comet\(s\)/, "$name - logged");
rcli('SAVE');
my $at = length job_log_text();
redis_stop();
ok(job_logged(qr/\[warn\] redis 127\.0\.0\.1:\d+ lost: /, 5, $at),
   "$name - Redis lost again");
produce_ok($kafka, '2 more', '--type room --room live://h -n 2 --body x');
wait_until(sub { @{ ok_bodies($c) } >= 5 }, 10);
is_deeply(ok_bodies($c), ['m1', 'm2', 'm3', 'x1', 'x2'],
          "$name - the known comet still gets them");
redis_start($ENV{TEST_NGINX_PORT2});
my $c2 = fake_comet('fa');
ok(job_logged(qr/comet fa moved: .*:$c->{port}\/\S+ -> .*:$c2->{port}\//),
   "$name - the new address is followed");
produce_ok($kafka, 'one more', '--type room --room live://h --body y');
wait_until(sub { @{ ok_bodies($c2) } >= 1 }, 10);
is_deeply(ok_bodies($c2), ['y1'], "$name - to the new address");
register('fa', $c2->{port}, 30, 'localhost');
ok(job_logged(qr/comet fa moved: .* -> http:\/\/localhost:$c2->{port}\//),
   "$name - a host name instead of an address");
produce_ok($kafka, 'one through a host name',
           '--type room --room live://h --body z');
wait_until(sub { @{ ok_bodies($c2) } >= 2 }, 10);
is_deeply(ok_bodies($c2), ['y1', 'z1'], "$name - resolved and delivered");
is(metric('goim_job_comets'), 1, "$name - still one comet");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
# the next blocks' redis-server must not load this registry
my $dir = (split /\n/, rcli('CONFIG', 'GET', 'dir'))[1];
unlink "$dir/dump.rdb" or diag("unlink $dir/dump.rdb: $!");
stop_all();

=== TEST 12: a Kafka outage: the job waits and goes on where it was
--- no_module
--- config
--- perl
my $kafka = kafka_start(1);
my $mock = kafka_pid();
my $c = fake_comet('fa');
my $job = job_start($kafka);
produce_ok($kafka, '2 pushes', '--type push --server fa --keys k -n 2');
wait_until(sub { @{ ok_bodies($c) } >= 2 });
kill 'USR1', $mock;
ok(wait_until(sub { metric('goim_job_kafka_up') == 0 }, 15),
   "$name - metrics: kafka down");
kill 'USR2', $mock;
produce_ok($kafka, '2 more', '--type push --server fa --keys k -n 2 --start 3');
wait_until(sub { @{ ok_bodies($c) } >= 4 }, 20);
is_deeply(ok_bodies($c), ['m1', 'm2', 'm3', 'm4'],
          "$name - the messages after the outage arrive, none twice");
ok(wait_until(sub { metric('goim_job_kafka_up') == 1 }), "$name - kafka up");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();

=== TEST 13: real comet: room, push, broadcast reach WebSocket and TCP clients
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_online_interval 1s;
goim_internal_url http://127.0.0.1:$TEST_NGINX_SERVER_PORT/goim/internal/push;
--- http_config
goim_internal_secret job-secret-0123456789;
--- config
location = /sub { goim_websocket; }
location = /goim/internal/push { goim_internal_push; }
--- stream_config
server {
    listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
    goim_tcp;
}
--- perl
my $kafka = kafka_start(2);
ok(wait_until(sub { (rcli('GET', 'comet_comet-a') // '') =~ /"addr"/ }),
   "$name - the comet registered itself");
my $ws = client('ws', { mid => 1, key => 'kw', room_id => 'live://9',
                        accepts => [1000, 1001, 1002] });
my $tcp = client('tcp', { mid => 2, key => 'kt', room_id => 'live://9',
                          accepts => [1000, 1001, 1002] });
my $job = job_start($kafka);
ok(job_logged(qr/comet comet-a added/), "$name - the job found it");
produce_ok($kafka, '100 room messages', '--type room --room live://9 -n 100');
for my $c ([ws => $ws], [tcp => $tcp]) {
    my @p = $c->[1]->read_pushes(100, 10);
    is_deeply([map { "$_->{op}:$_->{body}" } @p],
              [map { "1000:m$_" } 1 .. 100],
              "$name - $c->[0]: 100 room messages in order");
}
produce_ok($kafka, 'a push to kt', '--type push --server comet-a --keys kt'
           . ' --op 1001 --body p');
produce_ok($kafka, 'a broadcast', '--type broadcast --op 1002 --speed 0'
           . ' --body b');
my @t = $tcp->read_pushes(2, 5);
is_deeply([map { "$_->{op}:$_->{body}" } @t], ['1001:p1', '1002:b1'],
          "$name - tcp: the push, then the broadcast");
my @w = $ws->read_pushes(1, 5);
is_deeply([map { "$_->{op}:$_->{body}" } @w], ['1002:b1'],
          "$name - ws: only the broadcast");
ok(wait_until(sub { metric('goim_job_inflight_messages') == 0
                    && metric('goim_job_consumed_total') == 102 }),
   "$name - 102 consumed, none in flight");
is(metric('goim_job_undeliverable_total'), 0, "$name - none undeliverable");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
unlike(job_log_text(), qr/\[(?:warn|error)\]/, "$name - no warning");
stop_all();

=== TEST 14: real comet stopped (record alive) gets its messages when back
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_online_interval 1s;
goim_internal_url http://127.0.0.1:$TEST_NGINX_SERVER_PORT/goim/internal/push;
--- http_config
goim_internal_secret job-secret-0123456789;
--- config
location = /sub { goim_websocket; }
location = /goim/internal/push { goim_internal_push; }
--- perl
my $kafka = kafka_start(2);
ok(wait_until(sub { (rcli('GET', 'comet_comet-a') // '') =~ /"addr"/ }),
   "$name - the comet registered itself");
my $job = job_start($kafka);
my $ws = client('ws', { mid => 1, key => 'kw', room_id => 'live://10' });
produce_ok($kafka, 'a room message', '--type room --room live://10'
           . ' --body a');
is(join(',', map { $_->{body} } $ws->read_pushes(1, 5)), 'a1',
   "$name - delivered while the comet is up");
stop_nginx();
produce_ok($kafka, '20 room messages', '--type room --room live://10 -n 20');
ok(job_logged(qr/comet comet-a down: 127\.0\.0\.1:\d+ connection failed/),
   "$name - the job sees the comet down");
ok(rcli('GET', 'comet_comet-a'), "$name - its record is still alive");
# Hold the job while the comet restarts and the client joins the room
# again, so that its retry cannot come before the client.
kill 'STOP', $job;
ok(start_nginx($block), "$name - the comet restarted");
$ws = client('ws', { mid => 1, key => 'kw', room_id => 'live://10' });
kill 'CONT', $job;
is_deeply([map { $_->{body} } $ws->read_pushes(20, 10)],
          [map { "m$_" } 1 .. 20], "$name - then all 20 arrive, in order");
ok(job_logged(qr/comet comet-a up/, 5, index(job_log_text(), 'down')),
   "$name - the job logs it up again");
is(metric('goim_job_undeliverable_total'), 0, "$name - none undeliverable");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
stop_all();



=== TEST 15: HTTPS to the comet: verified against internal_ca; another CA is refused, retried, nothing lost
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_online_interval 1s;
goim_internal_url https://127.0.0.1:$TEST_NGINX_JOB_TLS_PORT/goim/internal/push;
--- http_config
goim_internal_secret job-secret-0123456789;
server {
    listen 127.0.0.1:$TEST_NGINX_JOB_TLS_PORT ssl;
    ssl_certificate $TEST_NGINX_JOB_CERT;
    ssl_certificate_key $TEST_NGINX_JOB_KEY;
    # every second request closes the connection: the job connects anew
    keepalive_requests 2;
    location = /goim/internal/push { goim_internal_push; }
}
--- config
location = /sub { goim_websocket; }
--- perl
my $kafka = kafka_start(2);
ok(wait_until(sub { (rcli('GET', 'comet_comet-a') // '') =~ m{"https://} }),
   "$name - the comet registered its https URL");
my $ws = client('ws', { mid => 1, key => 'kw', room_id => 'live://11' });
my $job = job_start($kafka, "internal_ca $ENV{TEST_NGINX_JOB_OTHER_CA};\n");
produce_ok($kafka, 'a room message', '--type room --room live://11'
           . ' --body w');
ok(job_logged(qr/comet comet-a down: 127\.0\.0\.1:\d+ .*certificate verify/),
   "$name - a certificate of another CA: refused") or diag(job_log_text());
is(scalar($ws->read_pushes(1, 1)), 0, "$name - nothing delivered");
stop_pid($job, 'TERM', 15);
$job = job_start($kafka, "internal_ca $ENV{TEST_NGINX_JOB_CA};\n");
is(join(',', map { $_->{body} } $ws->read_pushes(1, 10)), 'w1',
   "$name - the right CA: the message comes, over TLS");
for my $i (1 .. 5) {
    produce_ok($kafka, "room message $i", '--type room --room live://11'
               . " --body r$i-");
    is(join(',', map { $_->{body} } $ws->read_pushes(1, 5)), "r$i-1",
       "$name - request $i delivered");
}
ok(wait_until(sub { metric('goim_job_inflight_messages') == 0 }),
   "$name - none in flight");
is(metric('goim_job_undeliverable_total'), 0, "$name - none undeliverable");
is(stop_pid($job, 'TERM', 15), 0, "$name - SIGTERM: exit 0");
unlike(job_log_text(), qr/\[error\]/, "$name - no error");
stop_all();
