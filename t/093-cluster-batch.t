# POST /goim/push/batch through the cluster (docs/PROTOCOL.md 2.13):
# redis-server, kafka-mock, two nodes and goim-job on loopback.  One
# request's items (keys on both nodes, mids, a room, a broadcast, bad
# items) reach exactly their clients through Kafka and the job; the bad
# items are answered with their reasons and lose nothing of the others;
# with Redis down, key and mid items fail and rooms still go.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use GoimClient;
use GoimRedis qw(have_redis redis_stop redis_start rcli);
use GoimKafka qw(have_kafka);
use GoimCluster qw(cluster_up cluster_down node_api cluster);
use Time::HiRes qw(time sleep);

my $Repo = "$FindBin::Bin/..";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'the module and goim-job must be built'
    unless -f $Module && -x $Job;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

my $cl = cluster_up(nodes => 2);
my @node = @{ $cl->{nodes} };

sub client {
    my ($i, $transport, $token) = @_;
    my $c = GoimClient->new(transport => $transport, timeout => 5,
        port => $transport eq 'ws' ? $node[$i]{ws} : $node[$i]{tcp});
    my $err = $c->connect;
    die "connect node $i $transport: $err\n" if $err;
    $c->auth($token)
        or die "auth on node $i: " . ($c->error // '?') . "\n";
    $c->{name} = "$token->{key}\@$node[$i]{id}";
    return $c;
}

sub got {
    my ($c, $n, $timeout) = @_;
    return [sort map { "$_->{op}:$_->{body}" } $c->read_pushes($n, $timeout)];
}

my %c = (
    A => client(0, tcp => { mid => 1, key => 'ka', room_id => 'live://1',
                            accepts => [1000, 1001] }),
    B => client(1, ws  => { mid => 2, key => 'kb', room_id => 'live://1',
                            accepts => [1000, 1001] }),
    C => client(1, tcp => { mid => 1, key => 'kc', room_id => 'live://2',
                            accepts => [1000, 1001] }),
);

# --- 1. JSON lines: every kind of item, bad ones among them -------------

my @lines = (
    '{"type":"keys","keys":["ka","kb","gone"],"operation":1000,"msg":"k1"}',
    '{"type":"mids","mids":[1],"operation":1000,"msg":"m1"}',
    '{"type":"keys","keys":["ka"],"operation":"x"}',
    '{"type":"room","room":"live://1","operation":1000,"msg":"r1"}',
    '{"type":"room","room":"a\u0000b","operation":1000,"msg":"nul"}',
    '{"type":"all","operation":1001,"msg":"a1"}',
    '{"type":"mids","mids":[404],"operation":1000,"msg":"nobody"}',
);
my ($st, $j, $raw) = node_api(0, POST => '/goim/push/batch',
                              join("\n", @lines));
is $st, 200, 'json: HTTP 200';
is_deeply [map { [$_->{code}, $_->{messages}] } @{ $j->{data}{results} }],
    [[0, 2], [0, 2], [-400, undef], [0, 1], [-400, undef], [0, 1], [0, 0]],
    'json: per item codes; Kafka messages per item (one per server)'
    or diag $raw;
is_deeply [map { $_->{message} } @{ $j->{data}{results} }[2, 4]],
    ['operation: not a number', 'room: holds a NUL byte'],
    'json: the reasons' or diag $raw;
my %want = (
    A => ['1000:k1', '1000:m1', '1000:r1', '1001:a1'],
    B => ['1000:k1', '1000:r1', '1001:a1'],
    C => ['1000:m1', '1001:a1'],
);
for my $k (sort keys %want) {
    is_deeply got($c{$k}, scalar @{ $want{$k} }, 10), $want{$k},
        "json: $c{$k}{name} got exactly its pushes";
}

# --- 2. protobuf: the same path -----------------------------------------

sub varint {
    my ($n) = @_;
    my $o = '';
    while ($n >= 0x80) { $o .= chr(($n & 0x7f) | 0x80); $n >>= 7 }
    return $o . chr($n);
}
sub fint { my ($f, $v) = @_; $v ? varint($f << 3) . varint($v) : '' }
sub fbytes { my ($f, $v) = @_; varint($f << 3 | 2) . varint(length $v) . $v }
my $pb = fbytes(1, fint(1, 0) . fint(2, 1000) . fbytes(4, 'kc')
                   . fbytes(4, 'kb') . fbytes(7, "p\0k"))
       . fbytes(1, fint(1, 2) . fint(2, 1000) . fbytes(6, 'live://2')
                   . fbytes(7, 'pr'));
($st, $j, $raw) = node_api(1, POST => '/goim/push/batch', $pb,
                           headers => { 'Content-Type'
                                        => 'application/x-protobuf' });
is_deeply [$st, $j->{code}, map { $_->{messages} }
                            @{ $j->{data}{results} // [] }],
    [200, 0, 1, 1], 'protobuf: both items accepted, one message each'
    or diag $raw;
is_deeply got($c{C}, 2, 10), ["1000:p\0k", '1000:pr'],
    'protobuf: C got its key push and its room';
is_deeply got($c{B}, 1, 10), ["1000:p\0k"], 'protobuf: B its key push';
is_deeply got($c{A}, 1, 0.5), [], 'protobuf: A nothing';

# --- 3. Redis down: key and mid items fail, the room still goes ----------

redis_stop();
my $deadline = time + 10;
my $refused;
while (!$refused && time < $deadline) {
    ($st, $j) = node_api(0, POST => '/goim/push/batch',
        '{"type":"keys","keys":["zz"],"operation":1000}');
    $refused = ($j->{data}{results}[0]{code} // 0) == -500;
    sleep 0.2 unless $refused;
}
ok $refused, 'redis down: a key item answers -500';
($st, $j, $raw) = node_api(0, POST => '/goim/push/batch', join "\n",
    '{"type":"keys","keys":["ka"],"operation":1000,"msg":"lost"}',
    '{"type":"room","room":"live://1","operation":1000,"msg":"r2"}',
    '{"type":"mids","mids":[2],"operation":1000,"msg":"lost"}');
is_deeply [map { $_->{code} } @{ $j->{data}{results} // [] }],
    [-500, 0, -500], 'redis down: keys and mids -500, the room 0'
    or diag $raw;
like $j->{data}{results}[0]{message}, qr/^redis: /,
    'redis down: the reason names Redis';
is $j->{code}, -500, 'redis down: the envelope has the first failure';
is_deeply got($c{A}, 1, 10), ['1000:r2'], 'redis down: A got the room only';
is_deeply got($c{B}, 1, 10), ['1000:r2'], 'redis down: B got the room only';
is_deeply got($c{A}, 1, 0.5), [], 'redis down: nothing else';
redis_start(cluster()->{redis_port});

$_->close for values %c;
my @bad = cluster_down();
is_deeply \@bad, [], 'no alert, crit, crash or sanitizer report';

done_testing;
