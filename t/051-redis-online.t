# Online counts, the comet registry and pushes through Redis
# (docs/PROTOCOL.md 2.2, 2.3, 2.6-2.10, 3.4, 3.5): goim's ol_<server> layout, the node's
# lease, two nginx instances sharing one Redis, a node that stops, and
# Redis going away.  A fresh redis-server per block on $TEST_NGINX_PORT2;
# the second nginx listens on $TEST_NGINX_PORT3.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_json);
use GoimTest qw(default_servers client);
use GoimRedis qw(have_redis redis_start redis_stop redis_port rcli hgetall
                 wait_until);
use File::Path qw(make_path remove_tree);
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);

skip_unless_module();

Test::More::plan(skip_all => 'redis-server and redis-cli are needed')
    unless have_redis();

my $JSON = JSON::PP->new->canonical;

sub json_of { return $JSON->decode($_[0]) }

# --- the second nginx ---------------------------------------------------------

our $B;             # {root, pid} of the second nginx

sub nginx_b_start {
    my ($main) = @_;
    my $root = servroot() . '_b';
    my $port = $ENV{TEST_NGINX_PORT3};
    remove_tree($root);
    make_path(map { "$root/$_" } qw(conf logs client_body_temp));
    my $conf = '';
    $conf .= "load_module $Test::Goim::StreamModule;\n"
        if -f $Test::Goim::StreamModule;
    $conf .= "load_module $Test::Goim::GoimModule;\n";
    $conf .= "user root;\n" if $> == 0;
    $conf .= <<"EOF";
daemon on;
master_process on;
worker_processes 1;
error_log logs/error.log info;
pid logs/nginx.pid;
$main
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $root/client_body_temp;
    server {
        listen 127.0.0.1:$port;
        location = /sub { goim_websocket; }
        location /goim/ { goim_logic_api; }
    }
}
EOF
    open my $fh, '>', "$root/conf/nginx.conf" or die "$root: $!\n";
    print $fh $conf;
    close $fh;
    system($Test::Goim::NginxBin, '-p', "$root/", '-c', 'conf/nginx.conf',
           '-e', 'logs/error.log') == 0
        or die "the second nginx did not start\n";
    my $pid = wait_until(sub {
        open my $p, '<', "$root/logs/nginx.pid" or return;
        my $t = <$p>;
        $t && $t =~ /^(\d+)/ ? $1 : undef;
    }, 5) or die "the second nginx wrote no pid file\n";
    $B = { root => $root, pid => $pid };
    wait_until(sub { (api_b(GET => '/goim/online/total'))[0] }, 5)
        or die "the second nginx does not answer\n";
    return $B;
}

# quit and wait (the master is ours to reap: Test::Goim is a subreaper)
sub nginx_b_stop {
    my $b = $B or return 1;
    undef $B;
    kill 'QUIT', $b->{pid};
    return wait_until(sub {
        waitpid($b->{pid}, POSIX::WNOHANG());
        !kill 0, $b->{pid};
    }, 8);
}

END {
    local $?;
    if ($B) {
        kill 'KILL', $B->{pid};
        waitpid $B->{pid}, 0;
    }
}

sub b_log {
    open my $fh, '<', "$B->{root}/logs/error.log" or return '';
    local $/;
    return <$fh>;
}

# --- clients and the API --------------------------------------------------------

sub authed {
    my ($transport, $token, $port) = @_;
    $token->{accepts} //= [1000];
    return client($transport, $token, $port ? (port => $port) : ());
}

sub api {
    my ($method, $path, $body, $port) = @_;
    my ($st, $d) = http_json($method => '127.0.0.1',
                             $port // $ENV{TEST_NGINX_SERVER_PORT}, $path,
                             $body);
    return ($st, $d);
}

sub api_b { return api(@_[0 .. 2], $ENV{TEST_NGINX_PORT3}) }

# the data of a code-0 answer, undef otherwise
sub data_of {
    my ($st, $d) = @_;
    return $st && $st == 200 && ref $d eq 'HASH' && $d->{code} == 0
           ? $d->{data} : undef;
}

sub shard {
    my $v = rcli('HGET', @_);
    return defined $v && length $v ? json_of($v) : undef;
}

sub same { return $JSON->encode($_[0]) eq $JSON->encode($_[1]) }

add_block_preprocessor(sub {
    my $block = shift;
    redis_stop();
    redis_start($ENV{TEST_NGINX_PORT2}, '--enable-debug-command', 'local')
        unless defined $block->{no_redis};
    default_servers($block);
});

run_tests();

__DATA__

=== TEST 1: ol_<server> in goim's layout, the comet record, one lease holder
--- workers: 2
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_session_ttl 10m;
goim_online_interval 500ms;
goim_registry_ttl 3s;
goim_internal_url http://10.0.0.1:8080/goim-internal;
goim_weight 7;
goim_public_addrs 10.0.0.1,10.0.0.2;
--- perl
my @c = (authed('tcp', { mid => 1, key => 'a1', room_id => 'live://1000' }),
         authed('ws', { mid => 2, key => 'a2', room_id => 'live://1000' }));
my $t = authed('tcp', { mid => 3, key => 'a3', room_id => 'test://1' });

# CityHash32("live://1000") % 64 = 43, CityHash32("test://1") % 64 = 28
ok wait_until(sub {
    my $s = shard('ol_comet-a', '43');
    $s && $s->{room_count}{'live://1000'} == 2
        && rcli('HEXISTS', 'ol_comet-a', '28') eq '1';
}, 5), "$name - ol_comet-a written";
my $s43 = shard('ol_comet-a', '43');
is_deeply $s43->{room_count}, { 'live://1000' => 2 },
    "$name - shard 43 holds live://1000";
is $s43->{server}, 'comet-a', "$name - its server";
ok abs(time - $s43->{updated}) <= 10, "$name - updated is now"
    or diag $s43->{updated};
is_deeply shard('ol_comet-a', '28')->{room_count}, { 'test://1' => 1 },
    "$name - shard 28 holds test://1";
is join(',', sort split /\n/, rcli('HKEYS', 'ol_comet-a')), '28,43',
    "$name - no other shard";
is rcli('TYPE', 'ol_comet-a'), 'hash', "$name - a hash";
my $ttl = rcli('TTL', 'ol_comet-a');
ok $ttl > 590 && $ttl <= 600, "$name - TTL goim_session_ttl" or diag $ttl;

# a record written after the three connections; the other worker's
# address count reaches it within 10 s (it refreshes that every 10 s)
my $rec;
ok wait_until(sub {
    $rec = json_of(rcli('GET', 'comet_comet-a'));
    $rec->{conn_count} == 3 && $rec->{ip_count} >= 1;
}, 15), "$name - conn_count and ip_count"
    or diag explain $rec;
is $rec->{server}, 'comet-a', "$name - comet record: server";
is $rec->{addr}, 'http://10.0.0.1:8080/goim-internal', "$name - addr";
is $rec->{weight}, 7, "$name - weight";
is_deeply $rec->{addrs}, ['10.0.0.1', '10.0.0.2'], "$name - public addrs";
ok abs(time - $rec->{updated}) <= 10, "$name - updated";
$ttl = rcli('TTL', 'comet_comet-a');
ok $ttl >= 1 && $ttl <= 3, "$name - TTL goim_registry_ttl" or diag $ttl;
is rcli('SMEMBERS', 'comets'), 'comet-a', "$name - in the comets set";

# a shard that became empty is removed (goim leaves it)
$t->close;
ok wait_until(sub { rcli('HEXISTS', 'ol_comet-a', '28') eq '0' }, 3),
    "$name - shard 28 removed when its last room emptied";

my $d = data_of(api(GET => '/goim/online/room?type=live&rooms=1000'));
is_deeply $d, { 1000 => 2 }, "$name - online/room";
is $c[0]->heartbeat, 2, "$name - heartbeat count";

sleep 1;
my @lease = grep { /took the node's lease/ } split /\n/, error_log_text();
is scalar @lease, 1, "$name - one worker of two took the lease"
    or diag join "\n", @lease;
$_->close for @c;
ok wait_until(sub { rcli('EXISTS', 'ol_comet-a') eq '0' }, 3),
    "$name - ol_comet-a gone with its last room";
--- no_error_log
[warn]
[error]



=== TEST 2: two nodes share one Redis: cluster counts; a node that stops goes
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_online_interval 500ms;
goim_registry_ttl 2s;
goim_public_addrs 10.0.0.1;
goim_client_ports 4101 4102 0;
goim_domain conn.example.org;
--- perl
nginx_b_start(<<"EOF");
goim_server_id comet-b;
goim_redis 127.0.0.1:$ENV{TEST_NGINX_PORT2};
goim_online_interval 500ms;
goim_registry_ttl 2s;
goim_public_addrs 10.0.0.9;
goim_weight 20;
goim_shutdown_drain 100ms;
EOF
my $pb = $ENV{TEST_NGINX_PORT3};
my $a1 = authed('tcp', { mid => 1, key => 'a1', room_id => 'live://1000' });
my @b = (authed('ws', { mid => 2, key => 'b1', room_id => 'live://1000' }, $pb),
         authed('ws', { mid => 3, key => 'b2', room_id => 'live://1000' }, $pb),
         authed('ws', { mid => 4, key => 'b3', room_id => 'live://2000' }, $pb));

my $want = { 1000 => 3, 2000 => 1 };
ok wait_until(sub {
    same(data_of(api(GET => '/goim/online/room?type=live&rooms=1000&rooms=2000')),
         $want)
}, 5), "$name - online/room on A sums both nodes";
ok wait_until(sub {
    same(data_of(api_b(GET => '/goim/online/room?type=live&rooms=1000&rooms=2000')),
         $want)
}, 3), "$name - the same on B";
my $top = [{ room_id => '1000', count => 3 }, { room_id => '2000', count => 1 }];
is_deeply data_of(api(GET => '/goim/online/top?type=live&limit=10')), $top,
    "$name - online/top on A";
is_deeply data_of(api_b(GET => '/goim/online/top?type=live&limit=1')),
    [$top->[0]], "$name - online/top on B, limit 1";
is $a1->heartbeat, 3, "$name - heartbeat on A counts the cluster";
is $b[2]->heartbeat, 1, "$name - heartbeat on B";

is_deeply data_of(api(GET => '/goim/online/total')),
    { conn_count => 4, ip_count => 2 }, "$name - online/total sums both";

my $inst = data_of(api(GET => '/goim/nodes/instances'));
is join(',', sort map { $_->{hostname} } @{ $inst // [] }), 'comet-a,comet-b',
    "$name - nodes/instances lists both";
my ($ib) = grep { $_->{hostname} eq 'comet-b' } @{ $inst // [] };
is_deeply $ib && $ib->{metadata},
    { addrs => '10.0.0.9', conn_count => '3', ip_count => '1',
      offline => 'false', weight => '20' }, "$name - goim's metadata";
is $ib && $ib->{appid}, 'goim.comet', "$name - appid";

my ($st, $w) = api(GET => '/goim/nodes/weighted?platform=web');
is_deeply $w, { code => 0, message => '', data => {
    domain => 'conn.example.org', tcp_port => 4101, ws_port => 4102,
    heartbeat => 240, nodes => ['10.0.0.9', '10.0.0.1'],
    backoff => { max_delay => 300, base_delay => 3, factor => 1.8,
                 jitter => 0.3 },
    heartbeat_max => 2 } }, "$name - nodes/weighted, B's weight first";

# B stops with its connections: its record expires, its counts go
ok nginx_b_stop(), "$name - B quit";
ok wait_until(sub {
    same(data_of(api(GET => '/goim/online/room?type=live&rooms=1000&rooms=2000')),
         { 1000 => 1, 2000 => 0 })
}, 6), "$name - B's rooms gone from online/room after its TTL";
is join(',', map { $_->{hostname} }
             @{ data_of(api(GET => '/goim/nodes/instances')) // [] }),
    'comet-a', "$name - nodes/instances lists A only";
is_deeply data_of(api(GET => '/goim/online/total')),
    { conn_count => 1, ip_count => 1 }, "$name - online/total: A only";
ok wait_until(sub { rcli('SMEMBERS', 'comets') eq 'comet-a' }, 3),
    "$name - comet-b removed from the comets set";
$a1->close;
--- no_error_log
[warn]
[error]



=== TEST 3: push by mid and key through Redis; other servers' keys reported
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
--- perl
my $ka = authed('tcp', { mid => 11, key => 'ka' });
my $kw = authed('ws', { mid => 12, key => 'kw' });
# sessions of comet-b, as its nginx would write them
rcli('HSET', 'mid_11', 'kb', 'comet-b');
rcli('HSET', 'mid_12', 'kc', 'comet-b');
rcli('HSET', 'mid_12', 'kd', 'comet-c');
rcli('SET', 'key_kb', 'comet-b');

my ($st, $d) = api(POST => '/goim/push/mids?operation=1000&mids=11&mids=12,99',
                   'by mid');
is_deeply $d, { code => 0, message => '', data => {
    delivered_here => 2,
    other_servers => { 'comet-b' => ['kb', 'kc'], 'comet-c' => ['kd'] } } },
    "$name - push/mids: delivered here, others listed";
my ($p) = $ka->read_pushes(1, 2);
is $p && $p->{body}, 'by mid', "$name - ka got it";
($p) = $kw->read_pushes(1, 2);
is $p && $p->{body}, 'by mid', "$name - kw got it";

($st, $d) = api(POST => '/goim/push/keys?operation=1000&keys=ka&keys=kb'
                        . '&keys=nobody', 'by key');
is_deeply $d, { code => 0, message => '', data => {
    delivered_here => 1, other_servers => { 'comet-b' => ['kb'] } } },
    "$name - push/keys";
($p) = $ka->read_pushes(1, 2);
is $p && $p->{body}, 'by key', "$name - ka got it";

($st, $d) = api(POST => '/goim/push/mids?operation=1000&mids=77', 'none');
is_deeply $d, { code => 0, message => '', data => {
    delivered_here => 0, other_servers => {} } },
    "$name - an unknown mid: nothing, still OK";
$_->close for $ka, $kw;
--- no_error_log
[warn]
[error]



=== TEST 4: Redis down: the API answers -500 naming Redis; it recovers
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_online_interval 500ms;
goim_registry_ttl 2s;
--- perl
my $c = authed('tcp', { mid => 5, key => 'k5', room_id => 'live://5' });
ok wait_until(sub { data_of(api(GET => '/goim/online/total')) }, 3),
    "$name - online/total answers";
my $port = redis_port();
redis_stop('KILL');
ok wait_for_log(qr/connection lost/, 3), "$name - the loss is logged";

for my $r (['GET', '/goim/online/total'], ['GET', '/goim/nodes/instances'],
           ['GET', '/goim/nodes/weighted'],
           ['POST', '/goim/push/mids?operation=1000&mids=5'],
           ['POST', '/goim/push/keys?operation=1000&keys=k5']) {
    my $t0 = time;
    my ($st, $d) = api(@$r, 'x');
    is $st, 200, "$name - $r->[1]: HTTP 200";
    is $d && $d->{code}, -500, "$name - $r->[1]: code -500";
    like $d && $d->{message}, qr/^redis: /, "$name - $r->[1]: names redis";
    ok time - $t0 < 1, "$name - $r->[1]: at once";
}
is_deeply data_of(api(GET => '/goim/online/room?type=live&rooms=5')),
    { 5 => 1 }, "$name - online/room still answers";
is $c->heartbeat, 1, "$name - heartbeats too";

redis_start($port);
ok wait_until(sub { data_of(api(GET => '/goim/online/total')) }, 10),
    "$name - online/total answers again after the restart";
ok wait_until(sub { rcli('HEXISTS', 'ol_comet-a', '19') eq '0'
                    && rcli('EXISTS', 'ol_comet-a') eq '1' }, 5),
    "$name - ol_comet-a written again";
$c->close;
--- error_log
is not connected



=== TEST 5: a client that leaves while Redis has not answered
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_redis_timeout 3s;
--- perl
my $pid = fork // die;
if ($pid == 0) {
    { exec 'timeout', '5', '/usr/bin/redis-cli', '-p', redis_port(),
           'DEBUG', 'SLEEP', '1' }
    POSIX::_exit(127);
}
sleep 0.2;
for my $path ('/goim/online/total', '/goim/push/mids?operation=1000&mids=1') {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT})
        or die "connect: $!\n";
    my $m = $path =~ /push/ ? 'POST' : 'GET';
    print $s "$m $path HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx";
    sleep 0.1;
    close $s;
}
waitpid $pid, 0;
sleep 0.3;
ok data_of(api(GET => '/goim/online/total')), "$name - the API still answers";
--- error_log
client prematurely closed connection
--- no_error_log
[warn]



=== TEST 6: without goim_redis: this node answers nodes/* and online/total
--- main_config
goim_server_id solo;
goim_public_addrs 10.1.1.1;
--- perl
my $c = authed('tcp', { mid => 1, key => 'k1', room_id => 'live://1' });
is_deeply data_of(api(GET => '/goim/online/total')),
    { conn_count => 1, ip_count => 1 }, "$name - online/total";
my $i = data_of(api(GET => '/goim/nodes/instances'));
is join(',', map { $_->{hostname} } @$i), 'solo', "$name - instances: self";
my $w = data_of(api(GET => '/goim/nodes/weighted'));
is_deeply $w && $w->{nodes}, ['10.1.1.1'], "$name - weighted: its address";
is $w && $w->{tcp_port}, 3101, "$name - goim's default ports";
my ($st, $d) = api(POST => '/goim/push/mids?operation=1000&mids=1', 'local');
is_deeply $d, { code => 0, message => '' }, "$name - push/mids as before";
$c->close;
--- no_error_log
[warn]
[error]



=== TEST 7: the lease holder dies: another worker takes the work over
--- workers: 2
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_online_interval 500ms;
goim_registry_ttl 2s;
--- perl
my $holder = wait_until(sub {
    error_log_text() =~ /(\d+)#\d+: goim: this worker took the node's lease/
        ? $1 : undef;
}, 3);
ok $holder, "$name - a holder";
kill 'KILL', $holder;
ok wait_for_log(qr/took the node's lease \(previous holder: $holder\)/, 5),
    "$name - another worker took it over";
rcli('DEL', 'comet_comet-a');
ok wait_until(sub { rcli('EXISTS', 'comet_comet-a') eq '1' }, 3),
    "$name - and writes the comet record";
--- error_log eval
[qr/exited on signal 9/]



=== TEST 8: the registry TTL must outlive the interval
--- main_config
goim_online_interval 10s;
goim_registry_ttl 10s;
--- must_die
--- error_log
"goim_registry_ttl" must be longer than "goim_online_interval"
