# Members' messages kept in Redis (docs/PROTOCOL.md 1.16, 3.7): with
# goim_redis and goim_history members=on, the logic API keeps every push
# by mid it accepts in the member's stream offline_<mid> before it
# answers: the stream id's milliseconds are the epoch, its sequence the
# offset (1, 2, ...); MAXLEN ~ size, PEXPIRE ttl; a write that fails
# answers an error.  Each block gets its own redis-server.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use GoimTest qw(default_servers connected api);
use GoimRedis qw(have_redis redis_start redis_stop redis_port rcli
                 wait_until);
use JSON::PP ();
use Time::HiRes qw(time sleep);

skip_unless_module();

unless (have_redis()) {
    Test::More::plan(skip_all => 'redis-server and redis-cli are needed');
}

add_block_preprocessor(sub {
    my $block = shift;
    redis_stop();
    redis_start($ENV{TEST_NGINX_PORT2});
    default_servers($block);
});

# POST /goim/push/mids: the answer's code and message
sub mid_push {
    my ($mids, $msg) = @_;
    my ($st, $j, $raw) = api(POST => '/goim/push/mids?operation=1000&'
                             . join('&', map { "mids=$_" } @$mids), $msg);
    return ($j ? ($j->{code}, $j->{message}) : (undef, $raw // 'none'));
}

# the stream as [epoch, offset, op, body], oldest first
sub stream {
    my ($mid) = @_;
    my $out = rcli('XRANGE', "offline_$mid", '-', '+') // return undef;
    my @l = split /\n/, $out;
    my @e;
    while (@l) {
        my ($id, %f) = splice @l, 0, 5;
        my ($epoch, $offset) = $id =~ /^(\d+)-(\d+)\z/ or return undef;
        push @e, [$epoch, $offset, $f{op}, $f{body}];
    }
    return \@e;
}

run_tests();

__DATA__

=== TEST 1: pushes by mid kept in offline_<mid>, online or not, in order
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
# the comet does not recover a member's stream yet: op 35 says so
my $c = connected('tcp');
$c->send_packet(35, '{"rooms":[{"room_id":"mid://5","epoch":"1-1",'
                    . '"offset":0}]}');
my $r = $c->auth({ mid => 5, key => 'k5', accepts => [1000] })
    or die "auth failed\n";
ok !grep({ $_->{room_id} eq 'mid://5' } @{ $r->{rooms} // [] }),
    "$name - op 8 lists no member room" or diag explain $r;
my $res = $c->wait_op(36, 3);
my $rb = $res ? JSON::PP::decode_json($res->{body}) : {};
my ($e) = grep { $_->{room_id} eq 'mid://5' } @{ $rb->{rooms} // [] };
is_deeply [$e && @$e{qw(recovered reason)}], [JSON::PP::false, 'not joined'],
    "$name - op 36: the member room is not joined" or diag explain $res;
my $t0 = int(time * 1000);
is_deeply [mid_push([5, 6], "m$_")], [0, ''], "$name - push $_ accepted"
    for 1 .. 3;
my $t1 = int(time * 1000);

# the online member still gets them live, as before
for my $i (1 .. 3) {
    my $p = $c->wait_op(1000, 3);
    is $p && $p->{body}, "m$i", "$name - member 5 gets m$i live";
}

for my $mid (5, 6) {
    my $s = stream($mid);
    is_deeply [map { [@$_[1 .. 3]] } @$s],
        [[1, 1000, 'm1'], [2, 1000, 'm2'], [3, 1000, 'm3']],
        "$name - offline_$mid: offsets 1..3, op and body" or diag explain $s;
    my %epochs = map { $_->[0] => 1 } @$s;
    is scalar(keys %epochs), 1, "$name - offline_$mid: one epoch";
    my ($e) = keys %epochs;
    ok $e >= $t0 - 1000 && $e <= $t1 + 1000,
        "$name - offline_$mid: the epoch is the time of its first message"
        or diag "epoch $e, pushes between $t0 and $t1";
    my $pttl = rcli('PTTL', "offline_$mid");
    ok $pttl > 55000 && $pttl <= 60000, "$name - offline_$mid: PTTL is ttl"
        or diag "PTTL $pttl";
}

# mid 0 is nobody: nothing kept, the push still answers
is_deeply [mid_push([0], 'anon')], [0, ''], "$name - a push to mid 0";
is rcli('EXISTS', 'offline_0'), '0', "$name - no offline_0";

# a new stream (e.g. expired) starts a new epoch at offset 1
my $old = stream(6)->[0][0];
rcli('DEL', 'offline_6');
sleep 0.01;
is_deeply [mid_push([6], 'again')], [0, ''], "$name - push after DEL";
my $s = stream(6);
is scalar(@$s), 1, "$name - one message in the new stream";
is $s->[0][1], 1, "$name - offset 1 again";
ok $s->[0][0] > $old, "$name - a new epoch" or diag explain $s;
$c->close;
--- no_error_log
[error]
[warn]



=== TEST 2: the batch's mid items kept with each item's op and body
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
my $body = join "\n",
    '{"type":"mids","mids":[21,22],"operation":1001,"msg":"one"}',
    '{"type":"keys","keys":["nobody"],"operation":1000,"msg":"key"}',
    '{"type":"mids","mids":[22],"operation":1002,"msg_base64":"AAEC"}';
my ($st, $j, $raw) = api(POST => '/goim/push/batch', $body);
is_deeply [$st, $j && $j->{code}, $j && $j->{data}{accepted}], [200, 0, 3],
    "$name - the batch accepted" or diag $raw;
is_deeply [map { [@$_[1 .. 3]] } @{ stream(21) }], [[1, 1001, 'one']],
    "$name - offline_21";
is_deeply [map { [@$_[1 .. 3]] } @{ stream(22) }],
    [[1, 1001, 'one'], [2, 1002, "\0\1\2"]], "$name - offline_22, in order";
is rcli('KEYS', 'offline_*') =~ tr/\n//, 1, "$name - no other stream";
--- no_error_log
[error]
[warn]



=== TEST 3: MAXLEN ~ size: old messages go, offsets go on
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=4 ttl=60s members=on;
--- perl
my $bad = 0;
for my $i (1 .. 250) {
    my ($code, $msg) = mid_push([31], "n$i");
    $bad++ unless defined $code && $code == 0;
}
is $bad, 0, "$name - 250 pushes accepted";
my $s = stream(31);
ok @$s >= 4 && @$s < 250, "$name - trimmed, at least size kept"
    or diag scalar(@$s) . " kept";
is_deeply [map { $_->[1] } @$s], [251 - @$s .. 250],
    "$name - the last ones, offsets consecutive up to 250";
is $s->[-1][3], 'n250', "$name - the last body";
--- no_error_log
[error]
[warn]



=== TEST 4: a write that fails answers an error; Redis down too
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s members=on;
--- perl
rcli('SET', 'offline_9', 'not a stream');
my ($code, $msg) = mid_push([9], 'x');
is $code, -500, "$name - offline_9 is not a stream: -500";
like $msg,
    qr/^redis: member 9: the message was not kept \(offline_9\): .*WRONGTYPE/,
    "$name - the reason";
is_deeply [mid_push([10], 'y')], [0, ''], "$name - another member is fine";

redis_stop('KILL');
ok wait_for_log(qr/connection lost/, 3), "$name - Redis is gone";
($code, $msg) = mid_push([10], 'z');
is $code, -500, "$name - Redis down: -500";
like $msg, qr/^redis: /, "$name - says Redis" or diag $msg;
--- error_log
push refused: member 9: the message was not kept



=== TEST 5: members=off with goim_redis: nothing kept
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_history size=16 ttl=60s;
--- perl
is_deeply [mid_push([41], 'p')], [0, ''], "$name - push by mid";
is rcli('KEYS', 'offline_*'), '', "$name - no stream";
--- no_error_log
[error]
[warn]
