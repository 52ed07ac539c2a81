# Sessions in Redis (docs/PROTOCOL.md 1.3 step 7, 3.2, 3.3): goim's key
# layout after auth, renewal on heartbeats, removal on disconnect (only
# while the mapping still names this server), and what clients see when
# Redis is down or slower than goim_redis_timeout.  Each block gets its
# own redis-server on a free loopback port ($TEST_NGINX_PORT2).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops :ws http_json);
use GoimTest qw(default_servers connected client api);
use GoimRedis qw(have_redis redis_start redis_stop redis_port rcli
                 redis_sleep hgetall wait_until);
use Time::HiRes qw(time sleep);

skip_unless_module();

unless (have_redis()) {
    Test::More::plan(skip_all => 'redis-server and redis-cli are needed');
}

# Every redis-server here allows DEBUG (redis_sleep) from loopback.
use constant REDIS_DEBUG => ('--enable-debug-command', 'local');

# An authenticated client; dies (failing the block) if auth fails.
sub authed { return client($_[0], $_[1]) }

# Auth that is expected to fail: returns what the client saw, e.g.
# "closed 1011" (WebSocket), "closed" (TCP) or "authed".
sub auth_outcome {
    my ($transport, $token, $timeout) = @_;
    my $c = connected($transport);
    my $r = $c->auth($token, timeout => $timeout // 3);
    return ('authed', $c) if $r;
    return ('open', $c) unless $c->expect_closed(3);
    return ('closed' . ($c->{close_frame} ? ' ' . ($c->close_code // '')
                                          : ''), $c);
}

# Disconnects are fire and forget: a later connection's session is
# written after them on the same Redis connection (one worker), so once
# its key is gone, so are the earlier ones.
sub settle {
    my $c = authed('tcp', { mid => 0, key => 'settle' });
    wait_until(sub { rcli('EXISTS', 'key_settle') eq '1' })
        or return 0;
    $c->close;
    return wait_until(sub { rcli('EXISTS', 'key_settle') eq '0' });
}

# A fresh redis-server per block, started before nginx so that the
# first connect succeeds; `--- redis_args` adds arguments.
add_block_preprocessor(sub {
    my $block = shift;
    redis_stop();
    my $args = $block->{redis_args};
    $args = $args->[0] if ref $args eq 'ARRAY';
    redis_start($ENV{TEST_NGINX_PORT2}, REDIS_DEBUG, split ' ', $args // '')
        unless defined $block->{no_redis};
    default_servers($block);
});

run_tests();

__DATA__

=== TEST 1: TCP and WebSocket auth write goim's layout; disconnect removes it
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_session_ttl 10m;
--- perl
my $t = authed('tcp', { mid => 7, key => 'k-tcp', room_id => 'live://1' });
my $w = authed('ws', { mid => 7, key => 'k-ws' });
is_deeply hgetall('mid_7'), { 'k-tcp' => 'comet-a', 'k-ws' => 'comet-a' },
    "$name - HGETALL mid_7";
is rcli('GET', 'key_k-tcp'), 'comet-a', "$name - GET key_k-tcp";
is rcli('GET', 'key_k-ws'), 'comet-a', "$name - GET key_k-ws";
for my $k (qw(mid_7 key_k-tcp key_k-ws)) {
    my $ttl = rcli('TTL', $k);
    ok $ttl >= 595 && $ttl <= 600, "$name - TTL $k is goim_session_ttl"
        or diag "TTL $k = $ttl";
}
is rcli('TYPE', 'mid_7'), 'hash', "$name - mid_7 is a hash";
is rcli('TYPE', 'key_k-tcp'), 'string', "$name - key_ is a string";
# the comet registry (written at each connect) and the online counts (the
# lease holder's first pass, a second after start) are not sessions
is_deeply [sort grep { !/^(?:comets?(?:_|$)|ol_)/ }
           split /\n/, rcli('KEYS', '*')],
    [qw(key_k-tcp key_k-ws mid_7)], "$name - nothing else written";

# the client sees the auth reply only after Redis had it, and works
is $t->heartbeat, 1, "$name - TCP heartbeat after auth";
is $w->heartbeat, 0, "$name - WS heartbeat after auth";

$t->close;
ok wait_until(sub { rcli('EXISTS', 'key_k-tcp') eq '0' }),
    "$name - key_k-tcp removed on disconnect";
is_deeply hgetall('mid_7'), { 'k-ws' => 'comet-a' },
    "$name - the field k-tcp removed from mid_7";

$w->close;
ok wait_until(sub { rcli('EXISTS', 'key_k-ws') eq '0' }),
    "$name - key_k-ws removed on disconnect";
is rcli('EXISTS', 'mid_7'), '0', "$name - mid_7 gone with its last field";
--- no_error_log
[error]
[warn]



=== TEST 2: anonymous (mid 0) writes no mid_ hash; generated keys; default TTL
--- main_config
goim_server_id comet-b;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
--- perl
my $a = authed('tcp', { mid => 0, key => 'anon' });
my $g = authed('ws', { mid => 0 });
like $g->{key}, qr/^[0-9a-f-]{36}$/, "$name - a generated key";
is rcli('GET', 'key_anon'), 'comet-b', "$name - key_anon";
is rcli('GET', "key_$g->{key}"), 'comet-b', "$name - key_ of the generated key";
my $ttl = rcli('TTL', 'key_anon');
ok $ttl >= 1790 && $ttl <= 1800, "$name - default TTL is goim's 1800 s"
    or diag "TTL = $ttl";
is rcli('KEYS', 'mid_*'), '', "$name - no mid_ hash";
my $n = authed('tcp', { mid => -5, key => 'neg' });
is rcli('KEYS', 'mid_*'), '', "$name - none for a negative mid either";
$_->close for $a, $g, $n;
ok settle(), "$name - settled";
is join(',', grep { !/^comets?(?:_|$)/ } split /\n/, rcli('KEYS', '*')),
    '', "$name - all removed";
--- no_error_log
[error]
[warn]



=== TEST 3: a key that moved to another server keeps its mapping
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
--- perl
my $c = authed('tcp', { mid => 9, key => 'moved' });
my $d = authed('ws', { mid => 9, key => 'stays' });
# the key reconnected to comet-b before this connection closes
rcli('SET', 'key_moved', 'comet-b');
rcli('HSET', 'mid_9', 'moved', 'comet-b');
$c->close;
$d->close;
ok settle(), "$name - settled";
is rcli('GET', 'key_moved'), 'comet-b', "$name - key_moved still names comet-b";
is_deeply hgetall('mid_9'), { moved => 'comet-b' },
    "$name - mid_9 keeps moved -> comet-b, stays removed";
is rcli('EXISTS', 'key_stays'), '0', "$name - key_stays removed";
--- no_error_log
[error]
[warn]



=== TEST 4: a duplicate key on the same server keeps the newer mapping
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
--- workers: 2
--- perl
# with two workers the newer connection may land in the other worker,
# which then kicks the older one through the registry
my @old;
for my $i (1 .. 6) {
    my $o = authed($i % 2 ? 'tcp' : 'ws', { mid => 3, key => 'dup' });
    my $n = authed($i % 2 ? 'ws' : 'tcp', { mid => 3, key => 'dup' });
    ok $o->expect_closed(3), "$name - $i: the older one kicked";
    sleep 0.1;
    is rcli('GET', 'key_dup'), 'comet-a', "$name - $i: key_dup kept";
    is_deeply hgetall('mid_3'), { dup => 'comet-a' },
        "$name - $i: mid_3 kept";
    $n->close;
    ok wait_until(sub { rcli('EXISTS', 'key_dup') eq '0' }),
        "$name - $i: removed when the newer one closes";
}
--- no_error_log
[error]
[warn]



=== TEST 5: auth waits for Redis; the client gets nothing before its auth reply
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_redis_timeout 3s;
--- perl
for my $tr (qw(tcp ws)) {
    my $pid = redis_sleep(1);
    sleep 0.2;
    my $c = connected($tr);
    my $t0 = time;
    # auth and a heartbeat in one go: the heartbeat waits for the auth
    $c->send_packet(OP_AUTH, '{"mid":6,"key":"wait-' . $tr
                             . '","accepts":[1000]}');
    $c->send_packet(OP_HEARTBEAT, '');
    # pushes while Redis has not answered yet do not reach it; push/all
    # does not ask Redis (push/keys does: it would wait for the sleep)
    my ($st) = api(POST => '/goim/push/all?operation=1000', 'early');
    is $st, 200, "$name - $tr: the API answers while auth waits";
    ok time - $t0 < 0.5, "$name - $tr: at once";
    my @ops;
    while (my $p = $c->read_packet(3)) {
        push @ops, $p->{op};
        push @ops, sprintf('%.1f', time - $t0) if $p->{op} == OP_AUTH_REPLY;
        last if $p->{op} == OP_HEARTBEAT_REPLY;
    }
    my $waited = splice @ops, 1, 1;
    is "@ops", OP_AUTH_REPLY . ' ' . OP_HEARTBEAT_REPLY,
        "$name - $tr: the auth reply first, then the heartbeat reply";
    ok $waited >= 0.5, "$name - $tr: the reply waited for Redis"
        or diag "after ${waited}s";
    is rcli('GET', "key_wait-$tr"), 'comet-a', "$name - $tr: key written";
    api(POST => "/goim/push/keys?operation=1000&keys=wait-$tr", 'now');
    my ($p) = $c->read_pushes(1, 2);
    is $p && $p->{body}, 'now', "$name - $tr: pushes arrive after the auth";
    $c->close;
    waitpid $pid, 0;
}
--- no_error_log
[error]
[warn]



=== TEST 6: Redis down: auth fails and closes, nginx keeps serving, reconnects
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
--- perl
my $old = authed('tcp', { mid => 1, key => 'before' });
my $port = redis_port();
redis_stop('KILL');

ok wait_for_log(qr/Redis 127\.0\.0\.1:\d+: connection lost/, 3),
    "$name - the lost connection is logged";

for my $tr (qw(tcp ws)) {
    my $t0 = time;
    my ($got) = auth_outcome($tr, { mid => 2, key => "down-$tr" });
    my $dt = time - $t0;
    is $got, $tr eq 'ws' ? 'closed 1011' : 'closed',
        "$name - $tr auth while Redis is down: closed";
    ok $dt < 1, "$name - $tr: at once" or diag "took ${dt}s";
}

# nginx does not block: the older connection and the API still answer
my $t0 = time;
is $old->heartbeat, 0, "$name - heartbeat on an older connection";
my ($st) = api(GET => '/goim/online/total');
is $st, 200, "$name - the API answers";
ok time - $t0 < 0.5, "$name - both quickly";

sleep 1;
redis_start($port, REDIS_DEBUG);
my $t1 = time;
my $ok = wait_until(sub {
    my ($got, $c) = auth_outcome('tcp', { mid => 2, key => 'back' }, 2);
    $got eq 'authed' ? $c : undef;
}, 12);
ok $ok, "$name - auth works again after Redis restarted";
note sprintf "reconnected and authed %.2fs after the restart", time - $t1;
is rcli('GET', 'key_back'), 'comet-a', "$name - key_back written";
# the restarted Redis is empty: the older connection's session is written
# again on reconnect, without waiting for its renewal
ok wait_until(sub { (rcli('GET', 'key_before') // '') eq 'comet-a' }, 3),
   "$name - the older connection's session written again";
is_deeply hgetall('mid_1'), { before => 'comet-a' },
    "$name - with its mid_ hash";
$ok->close if $ok;
$old->close;
--- error_log eval
['auth failed: Redis unavailable', 'is not connected', 'reconnecting in',
 qr/Redis \S+: connected/]



=== TEST 7: a command slower than goim_redis_timeout fails the auth
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_redis_timeout 300ms;
--- perl
my $old = authed('ws', { mid => 1, key => 'before' });

my $pid = redis_sleep(2);
sleep 0.2;

my $t0 = time;
my ($got) = auth_outcome('tcp', { mid => 2, key => 'slow' });
my $dt = time - $t0;
is $got, 'closed', "$name - auth failed, connection closed";
ok $dt >= 0.25 && $dt < 1.5, "$name - after goim_redis_timeout"
    or diag "took ${dt}s";

$t0 = time;
is $old->heartbeat, 0, "$name - another connection answers meanwhile";
ok time - $t0 < 0.5, "$name - quickly";

waitpid $pid, 0;
my $ok = wait_until(sub {
    my ($got, $c) = auth_outcome('ws', { mid => 2, key => 'later' }, 2);
    $got eq 'authed' ? $c : undef;
}, 10);
ok $ok, "$name - auth works again after the sleep";
is rcli('GET', 'key_later'), 'comet-a', "$name - key_later written";
$ok->close if $ok;
$old->close;
--- error_log
timed out
auth failed: Redis unavailable



=== TEST 8: heartbeats renew the session, and re-add an expired key
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_session_ttl 3s;
--- perl
# renewals come at a heartbeat after a random [ttl/3, ttl) = [1 s, 3 s),
# like goim's [10, 30) min with 30 min: the TTL goes up again and again
my $c = authed('tcp', { mid => 4, key => 'renew' });
my $deadline = time + 8;   # two renewals of at most 3 s each, with slack
my ($ups, $last) = (0, rcli('PTTL', 'key_renew'));
while (time < $deadline) {
    $c->heartbeat;
    my $ttl = rcli('PTTL', 'key_renew');
    $ups++ if $ttl > $last + 200;
    $last = $ttl;
    sleep 0.2;
}
ok $ups >= 2, "$name - key_renew's TTL renewed by heartbeats" or diag $ups;
ok wait_until(sub {
    $c->heartbeat;
    rcli('EXISTS', 'key_renew') eq '1'
        && rcli('HEXISTS', 'mid_4', 'renew') eq '1';
}, 4), "$name - the mapping outlives its 3 s TTL";
# PTTL: TTL rounds a last half second down to 0
my $ttl = rcli('PTTL', 'mid_4');
ok $ttl > 0 && $ttl <= 3000, "$name - mid_4 has the TTL too" or diag $ttl;

rcli('DEL', 'key_renew');
my $back = wait_until(sub {
    $c->heartbeat;
    rcli('GET', 'key_renew');
}, 6);
is $back, 'comet-a', "$name - key_renew added again by a renewal";
$c->close;
--- error_log
had expired, added again
--- no_error_log
[error]



=== TEST 9: password and database
--- redis_args: --requirepass s3cret
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2 password=s3cret db=3;
--- perl
my $c = authed('ws', { mid => 5, key => 'pw' });
is rcli('-n', 3, 'GET', 'key_pw'), 'comet-a', "$name - key_pw in db 3";
is_deeply hgetall('mid_5', '-n', 3), { pw => 'comet-a' },
    "$name - mid_5 in db 3";
is rcli('-n', 0, 'DBSIZE'), '0', "$name - nothing in db 0";
$c->close;
--- no_error_log
[error]



=== TEST 10: a wrong password fails auth and is logged
--- redis_args: --requirepass s3cret
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2 password=wrong;
--- perl
my ($got) = auth_outcome('tcp', { mid => 5, key => 'pw' });
is $got, 'closed', "$name - auth failed";
--- error_log
AUTH failed
auth failed: Redis unavailable



=== TEST 11: no Redis at start: auth fails until it comes up
--- no_redis
--- main_config
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
--- perl
my ($got) = auth_outcome('ws', { mid => 1, key => 'early' });
is $got, 'closed 1011', "$name - auth refused with 1011";
redis_start($ENV{TEST_NGINX_PORT2}, REDIS_DEBUG);
my $ok = wait_until(sub {
    my ($got, $c) = auth_outcome('ws', { mid => 1, key => 'early' }, 2);
    $got eq 'authed' ? $c : undef;
}, 10);
ok $ok, "$name - auth works once Redis is up";
$ok->close if $ok;
--- error_log
connect failed
auth failed: Redis unavailable



=== TEST 12: goim_redis parameters are checked
--- main_config
goim_redis 127.0.0.1:6379 pass=x;
--- must_die
--- error_log
invalid parameter "pass=x"



=== TEST 13: goim_redis_timeout must be positive
--- main_config
goim_redis 127.0.0.1:6379;
goim_redis_timeout 0;
--- must_die
--- error_log
"goim_redis_timeout" directive invalid value



=== TEST 14: goim_redis is not duplicated
--- main_config
goim_redis 127.0.0.1:6379;
goim_redis 127.0.0.1:6380;
--- must_die
--- error_log
"goim_redis" directive is duplicate



=== TEST 99: goim_status reports the Redis connection, commands and timeouts
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
goim_redis_timeout 300ms;
--- config
location = /sub { goim_websocket; }
location /goim/ { goim_logic_api; }
location = /status { goim_status; }
--- perl
my $metric = sub {
    my ($name) = @_;
    my ($st, $body) = GoimClient::http_request(GET => '127.0.0.1',
                                               $ENV{TEST_NGINX_SERVER_PORT},
                                               '/status');
    my $sum = 0;
    $sum += $1 while $body =~ /^goim_\Q$name\E\{[^}]*\} (\d+)$/mg;
    return $sum;
};
my $c = authed('tcp', { mid => 9, key => 'metrics' });
ok wait_until(sub { $metric->('redis_up') == 1 }, 3),
   "$name - goim_redis_up is 1";
ok $metric->('redis_commands_total') >= 2,
   "$name - the session's commands are counted";
redis_sleep(1);
sleep 0.2;   # let DEBUG SLEEP reach the server first
my ($got) = auth_outcome('tcp', { mid => 10, key => 'slow' });
is $got, 'closed', "$name - auth during the sleep fails";
ok wait_until(sub { $metric->('redis_timeouts_total') >= 1 }, 3),
   "$name - the timeout is counted";
$c->close;
--- error_log
timed out



=== TEST 16: another module that exports its own hiredis (nchan) is loaded first
Our hiredis is linked in and hidden: nchan's bundled copy, loaded earlier
with RTLD_GLOBAL, took our Redis calls and crashed every worker.
--- load_before
/usr/lib/nginx/modules/ngx_nchan_module.so
--- workers: 2
--- main_config
goim_server_id comet-a;
goim_redis 127.0.0.1:$TEST_NGINX_PORT2;
--- perl
my $t = authed('tcp', { mid => 21, key => 'beside-nchan' });
is rcli('GET', 'key_beside-nchan'), 'comet-a',
    "$name - the session is written";
ok wait_until(sub { rcli('EXISTS', 'comet_comet-a') eq '1' }),
    "$name - the comet record is written";
$t->close;
ok wait_until(sub { rcli('EXISTS', 'key_beside-nchan') eq '0' }),
    "$name - and removed on disconnect";
--- no_error_log
[error]
[warn]
exited on signal
