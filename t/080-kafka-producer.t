# The logic API's Kafka producer (goim_kafka, docs/PROTOCOL.md 2.2-2.5
# and 4.2-4.4): each
# push route produces goim's PushMsg with goim's message key, push by key
# and mid one message per server, the answer comes only after Kafka
# acknowledged, and failures (brokers down, local queue full) are errors,
# never a silent success.  Configuration errors stop nginx -t; reload and
# quit with messages in flight end cleanly.  Each block gets its own
# redis-server ($TEST_NGINX_PORT2) and kafka-mock ($TEST_NGINX_KAFKA);
# what was produced is read back with kafka-probe dump.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(http_json);
use GoimTest qw(default_servers client api);
use GoimRedis qw(have_redis redis_start redis_stop rcli wait_until);
use GoimKafka qw(have_kafka kafka_start kafka_stop kafka_down kafka_up
                 kafka_new kafka_log);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

skip_unless_module();

unless (have_redis() && have_kafka()) {
    Test::More::plan(skip_all => 'redis-server, redis-cli, build/kafka-mock '
                                 . 'and build/kafka-probe are needed');
}

# A push in a child process, for answers that take a while: bg_answer()
# collects (status, decoded JSON, raw body, seconds taken).
sub bg_push {
    my ($path, $body, $timeout) = @_;
    pipe(my $r, my $w) or die "pipe: $!\n";
    my $t0 = time;
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        close $r;
        my ($st, undef, $raw) = api(POST => $path, $body // '',
                                    timeout => $timeout // 20);
        syswrite $w, ($st // 'none') . "\n" . ($raw // '');
        POSIX::_exit(0);
    }
    close $w;
    return { pid => $pid, fh => $r, t0 => $t0 };
}

# undef while the answer has not come within $secs
sub bg_answer {
    my ($bg, $secs) = @_;
    return undef unless IO::Select->new($bg->{fh})->can_read($secs);
    local $/;
    my $out = readline($bg->{fh}) // '';
    my $took = time - $bg->{t0};
    waitpid $bg->{pid}, 0;
    my ($st, $raw) = split /\n/, $out, 2;
    my $j = eval { JSON::PP->new->decode($raw // '') };
    return ($st, $j, $raw, $took);
}

# A push whose client leaves as soon as the request is sent.
sub push_and_leave {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!\n";
    print $s "POST $path HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbye!";
    sleep 0.2;
    close $s;
}

# The sum over workers of a goim_status series.
sub metric {
    my ($series) = @_;
    my ($st, $body) = GoimClient::http_request(GET => '127.0.0.1',
        $ENV{TEST_NGINX_SERVER_PORT}, '/status');
    my $sum = 0;
    my ($name, $labels) = $series =~ /^(\w+)(?:\{(.*)\})?$/;
    my $re = defined $labels ? qr/^goim_$name\{.*\Q,$labels\E\} (\d+)$/m
                             : qr/^goim_$name\{[^}]*\} (\d+)$/m;
    $sum += $1 while $body =~ /$re/g;
    return $sum;
}

sub master_pid {
    open my $fh, '<', "$ENV{TEST_NGINX_SERVROOT}/logs/nginx.pid" or return;
    my ($pid) = <$fh> =~ /(\d+)/;
    return $pid;
}

sub workers {
    my $master = master_pid() or return ();
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $t = <$fh> // next;
        push @kids, $1 if $t =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $master;
    }
    return @kids;
}

# Fresh redis-server and kafka-mock per block, started before nginx.
add_block_preprocessor(sub {
    my $block = shift;
    redis_stop();
    redis_start($ENV{TEST_NGINX_PORT2});
    $ENV{TEST_NGINX_KAFKA} = kafka_start();
    default_servers($block, config => <<'EOF');
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
    location = /status { goim_status; }
EOF
});

run_tests();

__DATA__

=== TEST 1: push/room and push/all produce ROOM and BROADCAST; nothing is delivered here
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA;
--- perl
ok wait_until(sub { metric('kafka_up') == 1 }, 5),
    "$name - goim_kafka_up 1 before any push (metadata from the broker)";
my $c = client('tcp', { mid => 1, key => 'k1', room_id => 'live://1000',
                        accepts => [1000, 1001] });
my $bin = join '', map { chr } 0 .. 255;

my ($st, $j, $raw) = api(POST => '/goim/push/room?operation=1000&type=live'
                                 . '&room=1000', $bin);
is $st, 200, "$name - room: HTTP 200";
is_deeply $j, { code => 0, message => '' }, "$name - room: goim's answer"
    or diag $raw;
my @m = kafka_new();
is scalar @m, 1, "$name - room: one message";
is_deeply [@{ $m[0] }{qw(key type operation speed server room keys)}],
    ['live://1000', 1, 1000, 0, '', 'live://1000', []],
    "$name - room: ROOM, keyed by the room";
ok $m[0]{msg} eq $bin, "$name - room: the binary body, every byte";

($st, $j, $raw) = api(POST => '/goim/push/all?operation=1001&speed=300',
                      "to all");
is_deeply [$st, $j], [200, { code => 0, message => '' }],
    "$name - all: accepted" or diag $raw;
@m = kafka_new();
is scalar @m, 1, "$name - all: one message";
is_deeply [@{ $m[0] }{qw(key type operation speed server room keys msg)}],
    ['1001', 2, 1001, 300, '', '', [], 'to all'],
    "$name - all: BROADCAST with speed, keyed by the operation";

($st, $j) = api(POST => '/goim/push/all?operation=1000', '');
is $j->{code}, 0, "$name - all without speed and body";
@m = kafka_new();
is_deeply [@{ $m[0] }{qw(type speed msg)}], [2, 0, ''],
    "$name - speed 0, empty message";

# goim's bind errors are unchanged and produce nothing
($st, $j) = api(POST => '/goim/push/room?operation=1000&type=live', 'x');
is_deeply [$st, $j->{code}], [400, -400], "$name - room without room: 400";
is scalar(kafka_new()), 0, "$name - ... nothing produced";
($st, $j) = api(POST => '/goim/push/room?operation=1000&type=live'
                        . '&room=a%00b', 'x');
is_deeply [$st, $j->{code}], [400, -400], "$name - a room with NUL: 400";
is scalar(kafka_new()), 0, "$name - ... nothing produced";

# Kafka mode delivers through the job only: nothing arrives directly
my @got = $c->read_pushes(1, 0.5);
is scalar @got, 0, "$name - the member here got nothing directly";

is metric('kafka_messages_total{state="produced"}'), 3,
    "$name - goim_kafka_messages_total produced";
is metric('kafka_messages_total{state="acked"}'), 3, "$name - ... acked";
is metric('kafka_messages_total{state="failed"}'), 0, "$name - ... failed";
is metric('kafka_in_flight'), 0, "$name - goim_kafka_in_flight 0";
is metric('kafka_up'), 1, "$name - goim_kafka_up 1";
$c->close;
--- no_error_log
[error]
[warn]



=== TEST 2: push/keys and push/mids: one PUSH per server, keys sorted and unique
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA topic=goim-push-topic timeout=3s;
--- perl
my $c = client('tcp', { mid => 5, key => 'ka', accepts => [1000] });
ok wait_until(sub { (rcli('GET', 'key_ka') // '') eq 'comet-a' }),
    "$name - this node's session";
# sessions of other servers, as their comets would have written them
rcli('MSET', 'key_kc', 'comet-b', 'key_kb', 'comet-b', 'key_kd', 'comet-c');
rcli('HSET', 'mid_5', 'kb', 'comet-b');
rcli('HSET', 'mid_6', 'kc', 'comet-b', 'kd', 'comet-c');

my ($st, $j, $raw) = api(POST => '/goim/push/keys?operation=1000&keys=kd'
    . '&keys=kc&keys=kb&keys=ka&keys=kb&keys=gone', "k\0ey");
is_deeply [$st, $j], [200, { code => 0, message => '',
                             data => { servers => 3, messages => 3 } }],
    "$name - keys: answered with servers and messages" or diag $raw;
my @m = sort { $a->{server} cmp $b->{server} } kafka_new();
is_deeply [map { [@{$_}{qw(type operation server key keys msg)}] } @m],
    [[0, 1000, 'comet-a', 'ka', ['ka'], "k\0ey"],
     [0, 1000, 'comet-b', 'kb', ['kb', 'kc'], "k\0ey"],
     [0, 1000, 'comet-c', 'kd', ['kd'], "k\0ey"]],
    "$name - keys: one PUSH per server, keyed by its first key"
    or diag explain \@m;

($st, $j, $raw) = api(POST => '/goim/push/mids?operation=1001&mids=6,5'
                             . '&mids=404', 'm');
is_deeply [$st, $j], [200, { code => 0, message => '',
                             data => { servers => 3, messages => 3 } }],
    "$name - mids: answered" or diag $raw;
@m = sort { $a->{server} cmp $b->{server} } kafka_new();
is_deeply [map { [@{$_}{qw(operation server key keys)}] } @m],
    [[1001, 'comet-a', 'ka', ['ka']],
     [1001, 'comet-b', 'kb', ['kb', 'kc']],
     [1001, 'comet-c', 'kd', ['kd']]],
    "$name - mids: the members' keys grouped by server" or diag explain \@m;

# goim: no online target is a success that produces nothing
($st, $j) = api(POST => '/goim/push/keys?operation=1000&keys=nobody', 'x');
is_deeply [$st, $j], [200, { code => 0, message => '',
                             data => { servers => 0, messages => 0 } }],
    "$name - no target: code 0, zero messages";
($st, $j) = api(POST => '/goim/push/mids?operation=1000&mids=77', 'x');
is $j->{data}{messages}, 0, "$name - an offline member: zero messages";
is scalar(kafka_new()), 0, "$name - ... nothing produced";

# a NUL would end the key in the protobuf string
($st, $j) = api(POST => '/goim/push/keys?operation=1000&keys=a%00b', 'x');
is_deeply [$st, $j->{code}], [400, -400], "$name - a key with NUL: 400";

is scalar($c->read_pushes(1, 0.3)), 0, "$name - nothing delivered directly";
$c->close;
--- no_error_log
[error]
[warn]



=== TEST 3: answers wait for the ack; brokers down -> error within the timeout; up -> success
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA timeout=3s;
--- perl
my $path = '/goim/push/room?operation=1000&type=live&room=7';
my ($st, $j) = api(POST => $path, 'warm');
is $j->{code}, 0, "$name - a first push is acknowledged";
kafka_new();

kafka_down();
my $bg = bg_push($path, 'waits');
my @a = bg_answer($bg, 1);
is $a[0], undef, "$name - no answer while Kafka has not acknowledged";
kafka_up();
@a = bg_answer($bg, 10);
is_deeply [@a[0, 1]], [200, { code => 0, message => '' }],
    "$name - answered code 0 once the brokers are back" or diag $a[2];
my @m = kafka_new();
is_deeply [map { $_->{msg} } @m], ['waits'], "$name - and it is in Kafka";

kafka_down();
my $t = time;
($st, $j, my $raw) = api(POST => $path, 'fails', timeout => 15);
my $took = time - $t;
is $st, 200, "$name - down: HTTP 200 (goim's API errors)";
is $j->{code}, -500, "$name - down: code -500";
like $j->{message},
    qr/^kafka: Local: Message timed out \(0 of 1 messages acknowledged\)$/,
    "$name - down: the message names Kafka and the error" or diag $raw;
ok $took >= 2.5 && $took < 6, "$name - after the 3 s timeout, not later"
    or diag "took $took s";

($st, $j) = api(POST => '/goim/push/all?operation=1000', 'fails too',
                timeout => 15);
is $j->{code}, -500, "$name - push/all fails too";
is metric('kafka_up'), 0, "$name - goim_kafka_up 0";
ok metric('kafka_messages_total{state="failed"}') >= 2,
    "$name - failures counted";

kafka_up();
ok wait_until(sub {
    my (undef, $j) = api(POST => $path, 'again', timeout => 10);
    $j && $j->{code} == 0;
}, 20), "$name - up again: pushes succeed";
is metric('kafka_up'), 1, "$name - goim_kafka_up 1 again";
is metric('kafka_in_flight'), 0, "$name - nothing in flight";
--- error_log
goim: API /goim/push/room answered -500: kafka: Local: Message timed out



=== TEST 4: a full local queue answers 503 "kafka queue full" at once
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA timeout=4s;
goim_kafka_option queue.buffering.max.messages 1;
--- perl
kafka_down();
my $path = '/goim/push/room?operation=1000&type=live&room=7';
my $bg = bg_push($path, 'queued');
sleep 0.5;
my $t = time;
my ($st, $j, $raw) = api(POST => $path, 'refused');
is $st, 503, "$name - HTTP 503";
is_deeply $j, { code => -500,
                message => 'kafka queue full (0 of 1 messages acknowledged)' },
    "$name - kafka queue full" or diag $raw;
ok time - $t < 1, "$name - at once";
is metric('kafka_messages_total{state="queue_full"}'), 1,
    "$name - counted as queue_full";
is metric('kafka_in_flight'), 1, "$name - one in flight";
kafka_up();
my @a = bg_answer($bg, 10);
is_deeply [@a[0, 1]], [200, { code => 0, message => '' }],
    "$name - the queued one is acknowledged after all" or diag $a[2];
is_deeply [map { $_->{msg} } kafka_new()], ['queued'],
    "$name - only it is in Kafka";
--- error_log
kafka queue full



=== TEST 5: keys on two servers with the queue for one: 503, one of two acknowledged
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA;
goim_kafka_option queue.buffering.max.messages 1;
goim_kafka_option linger.ms 0;
--- perl
rcli('MSET', 'key_x1', 'comet-b', 'key_x2', 'comet-c');
my ($st, $j, $raw) = api(POST => '/goim/push/keys?operation=9&keys=x1'
                                 . '&keys=x2', 'two');
is $st, 503, "$name - HTTP 503";
is_deeply $j, { code => -500,
                message => 'kafka queue full (1 of 2 messages acknowledged)' },
    "$name - the produced one stays produced, and the answer says so"
    or diag $raw;
is_deeply [map { $_->{server} } kafka_new()], ['comet-b'],
    "$name - comet-b's message is in Kafka";
--- error_log
kafka queue full



=== TEST 6: nginx -t reports a bad goim_kafka_option with librdkafka's reason
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA;
goim_kafka_option compression.codec lz4;
goim_kafka_option sasl.mechanisms PLAIN;
--- perl
my $root = $ENV{TEST_NGINX_SERVROOT};
open my $in, '<', "$root/conf/nginx.conf" or die "$!\n";
my $conf = do { local $/; <$in> };
my $test = sub {
    my ($line) = @_;
    (my $bad = $conf) =~ s/^(goim_kafka .*)$/$1\n$line/m;
    open my $out, '>', "$root/conf/bad.conf" or die "$!\n";
    print $out $bad;
    close $out;
    my $bin = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    my $res = `$bin -t -p $root/ -c conf/bad.conf -e logs/bad.log 2>&1`;
    return ($? >> 8, $res);
};
my ($rc, $out) = $test->('goim_kafka_option no.such.property 1;');
isnt $rc, 0, "$name - an unknown property fails nginx -t";
like $out, qr/invalid goim_kafka_option "no\.such\.property": No such configuration property: "no\.such\.property"/,
    "$name - ... with librdkafka's reason";
($rc, $out) = $test->('goim_kafka_option acks banana;');
isnt $rc, 0, "$name - a bad value fails nginx -t";
like $out, qr/invalid goim_kafka_option "acks": Invalid value for configuration property "request\.required\.acks"/,
    "$name - ... with librdkafka's reason";
($rc, $out) = $test->('goim_kafka_option message.timeout.ms 10;');
like $out, qr/"message\.timeout\.ms" is set by "goim_kafka"/,
    "$name - goim_kafka's own properties are refused";
($rc, $out) = $test->('');
is $rc, 0, "$name - the good configuration passes nginx -t" or diag $out;
--- no_error_log
[error]



=== TEST 7: goim_kafka without goim_redis
--- main_config
goim_kafka 127.0.0.1:9;
--- must_die
--- error_log
"goim_kafka" needs "goim_redis"



=== TEST 8: goim_kafka's parameters are checked
--- main_config
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka 127.0.0.1:9 timeout=0;
--- must_die
--- error_log
invalid timeout "timeout=0"



=== TEST 9: an unknown goim_kafka parameter
--- main_config
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka 127.0.0.1:9 partitions=4;
--- must_die
--- error_log
invalid parameter "partitions=4"



=== TEST 10: reload with messages in flight: the old worker answers, then exits
--- workers: 2
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA timeout=2s;
--- perl
my $path = '/goim/push/room?operation=1000&type=live&room=7';
my @old = workers();
kafka_down();
my @bg = map { bg_push($path, "in flight $_") } 1 .. 4;
push_and_leave($path);
sleep 0.3;
kill 'HUP', master_pid();
ok wait_until(sub { grep { my $w = $_; !grep { $_ == $w } @old } workers() },
              5), "$name - new workers";
for my $bg (@bg) {
    my @a = bg_answer($bg, 8);
    is_deeply [@a[0, 1]], [200, { code => -500, message =>
        'kafka: Local: Message timed out (0 of 1 messages acknowledged)' }],
        "$name - a request in flight is answered by its old worker"
        or diag $a[2];
}
ok wait_until(sub { my %now = map { $_ => 1 } workers();
                    !grep { $now{$_} } @old }, 8),
    "$name - the old workers exit";
kafka_up();
ok wait_until(sub {
    my (undef, $j) = api(POST => $path, 'new', timeout => 5);
    $j && $j->{code} == 0;
}, 15), "$name - the new workers produce";
--- error_log
Message timed out



=== TEST 11: quit: a waiting request is answered first; what a gone client left is flushed, then dropped
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA timeout=3s;
--- perl
my $path = '/goim/push/room?operation=1000&type=live&room=7';
kafka_down();
my $bg = bg_push($path, 'waiting');
sleep 0.3;
kill 'QUIT', master_pid();
my @a = bg_answer($bg, 8);
is_deeply [@a[0, 1]], [200, { code => -500, message =>
    'kafka: Local: Message timed out (0 of 1 messages acknowledged)' }],
    "$name - answered before the worker exits" or diag $a[2];
--- error_log
Message timed out



=== TEST 12: quit with a message whose client left: bounded flush, then dropped with a warning
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_kafka $TEST_NGINX_KAFKA timeout=10s;
--- perl
my $path = '/goim/push/room?operation=1000&type=live&room=7';
kafka_down();
push_and_leave($path);
my @w = workers();
my $t = time;
kill 'QUIT', master_pid();
ok wait_until(sub { !grep { kill 0, $_ } @w }, 6),
    "$name - the worker exits";
my $took = time - $t;
ok $took >= 1.5 && $took < 5, "$name - after a flush of about 2 s"
    or diag "took $took s";
ok wait_for_log(qr/1 messages still in flight 2000 ms after exit began/, 3),
    "$name - the dropped message is logged";
--- error_log
still in flight
