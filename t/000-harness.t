# Tests of the test harness (t/lib/Test/Goim.pm) and of GoimClient's HTTP,
# TLS and upgrade-failure paths, using only stock nginx features: they pass
# whether or not build/ngx_goim_module.so exists.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(http_request http_json have_tls);
use File::Temp qw(tempdir);
use IO::Socket::INET;

no_goim_module();    # the harness must not depend on the module

# A self-signed certificate for the TLS blocks ($TEST_NGINX_CERT_DIR).
my $certs = tempdir(CLEANUP => 1);
$ENV{TEST_NGINX_CERT_DIR} = $certs;
system("openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost "
    . "-days 2 -keyout $certs/key.pem -out $certs/cert.pem >/dev/null 2>&1");

# Worker pids of the running nginx, from its pid file and /proc.
sub worker_pids {
    open my $fh, '<', "$ENV{TEST_NGINX_SERVROOT}/logs/nginx.pid" or return;
    my ($master) = <$fh> =~ /(\d+)/;
    return Test::Goim::_children_of($master);
}

# Runs a generated test file with the harness; returns its TAP output.
sub run_inner_test {
    my ($name, $data) = @_;
    $data =~ s/^    //mg;    # indented so that this file's parser skips it
    my $dir = tempdir(CLEANUP => 1);
    my $file = "$dir/$name.t";
    open my $fh, '>', $file or die $!;
    print $fh "use lib '$FindBin::Bin/lib';\nuse Test::Goim;\n"
        . "no_goim_module();\nrun_tests();\n__DATA__\n$data";
    close $fh;
    # its servroot goes with the temporary directory
    local $ENV{TEST_GOIM_SERVROOT} = "$dir/servroot";
    my $out = `$^X $file 2>&1`;
    return $out;
}

run_tests();

__DATA__

=== TEST 1: plain return, exact body
--- config
    location = /t { return 200 "hello\n"; }
--- request
GET /t
--- response_body
hello



=== TEST 2: error_code and response_body_like
--- config
    location = /t { return 404; }
--- request
GET /nothing-here
--- error_code: 404
--- response_body_like: 404 Not Found



=== TEST 3: POST body is sent with Content-Length
--- config
    location = /t { return 200 "$request_method $content_length\n"; }
--- request
POST /t
0123456789
--- response_body
POST 10



=== TEST 4: exact body bytes via request_body eval
--- config
    location = /t { return 200 "$content_length\n"; }
--- request
POST /t
--- request_body eval
"a\n\0b\n"
--- response_body
5



=== TEST 5: more_headers and response_headers
--- config
    location = /t {
        add_header X-Seen "$http_x_foo" always;
        return 200 "$http_x_foo\n";
    }
--- more_headers
X-Foo: bar baz
--- request
GET /t
--- response_headers
X-Seen: bar baz
Content-Type: text/plain
!X-Nope
--- response_body
bar baz



=== TEST 6: chunked response is decoded
--- config
    location = /t {
        sub_filter_types text/plain;
        sub_filter hello bye;
        return 200 "hello world\n";
    }
--- request
GET /t
--- response_headers
Transfer-Encoding: chunked
--- response_body
bye world



=== TEST 7: error_log and no_error_log
--- config
    location / { root html; }
--- request
GET /missing.txt
--- error_code: 404
--- error_log
open()
No such file or directory
--- no_error_log
[warn]
[emerg]



=== TEST 8: regex error_log via eval
--- config
    location / { root html; }
--- request
GET /missing2.txt
--- error_code: 404
--- error_log eval
[qr{\[error\] \d+#\d+: \*\d+ open\(\) ".*/missing2\.txt" failed}]



=== TEST 9: stream_config and a perl section
--- stream_config
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
        return "stream-ok\n";
    }
--- perl
my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
    PeerPort => $ENV{TEST_NGINX_STREAM_PORT}, Timeout => 2);
ok $s, "$name - stream port accepts";
my $line = $s && <$s>;
is $line, "stream-ok\n", "$name - stream return";
like $block->name, qr/stream_config/, "$name - \$block in scope";



=== TEST 10: ports, variables and http_request from perl
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2;
        location / { return 200 "two:$server_port\n"; }
    }
--- config
    location = /t { return 200 "$TEST_NGINX_SERVROOT\n"; }
--- request
GET /t
--- response_body
$TEST_NGINX_SERVROOT
--- perl
my %p = map { $ENV{"TEST_NGINX_$_"} => 1 }
        qw(SERVER_PORT STREAM_PORT PORT2 PORT3);
is scalar(keys %p), 4, "$name - four distinct ports";
my ($st, $body) = http_request(GET => '127.0.0.1', $ENV{TEST_NGINX_PORT2}, '/');
is $st, 200, "$name - second server status";
is $body, "two:$ENV{TEST_NGINX_PORT2}\n", "$name - second server body";
is $ENV{TEST_GOIM_MODULE_LOADED}, 0, "$name - module not loaded";



=== TEST 11: two workers
--- workers: 2
--- config
    location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok
--- perl
is scalar(() = worker_pids()), 2, "$name - two worker processes";



=== TEST 12: a crashed worker, and the zone lock it held, allowed when error_log names it
--- config
    location = /t { return 200 "ok\n"; }
--- perl
my @w = worker_pids();
ok kill('KILL', $w[0]), "$name - killed a worker";
ok Test::Goim::wait_for_log(qr/exited on signal 9/, 3),
   "$name - wait_for_log saw the crash";
# what the master says when the killed worker held a zone's lock: excused
# with the crash (it is nginx's, not a fault)
open my $log, '>>', Test::Goim::servroot() . '/logs/error.log' or die $!;
print $log "2026/12/06 00:00:00 [alert] 1#1: shared memory zone \"goim\" "
    . "was locked by $w[0]\n";
close $log;
--- error_log
exited on signal 9



=== TEST 13: must_die on a config error
--- config
    bogus_directive_xyz on;
--- must_die
--- error_log
unknown directive "bogus_directive_xyz"



=== TEST 14: the harness fails a block on unexpected alert lines
--- perl
my $out = run_inner_test('meta-alert', <<'INNER');
    === TEST 1: worker crash not allowed
    --- perl
    open my $fh, '<', "$ENV{TEST_NGINX_SERVROOT}/logs/nginx.pid";
    my ($m) = <$fh> =~ /(\d+)/;
    kill 'KILL', Test::Goim::_children_of($m);
    Test::Goim::wait_for_log('exited on signal', 3);

    === TEST 2: missing error_log line, forbidden no_error_log line
    --- config
        location / { root html; }
    --- request
    GET /nope
    --- error_code: 404
    --- error_log
    this line is not in the log
    --- no_error_log
    No such file or directory
INNER
like $out, qr/^not ok \d+ - TEST 1: .* no alert\/crit\/emerg\/crash/m,
     "$name - crash detected";
like $out, qr/^not ok \d+ - TEST 2: .*error_log has "this line/m,
     "$name - missing error_log line detected";
like $out, qr/^not ok \d+ - TEST 2: .*no_error_log "No such file/m,
     "$name - unwanted line detected";
like $out, qr/error\.log \(last \d+ lines\)/, "$name - log tail printed";



=== TEST 15: GoimClient over TLS, failed upgrade keeps the HTTP status
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_PORT2 ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/key.pem;
        location /sub { return 426 "no websocket here\n"; }
        location /json { return 200 '{"code":0,"data":[1,2]}'; }
    }
--- perl
SKIP: {
    skip "IO::Socket::SSL not installed", 5 unless have_tls();
    my $c = GoimClient->new(transport => 'ws', port => $ENV{TEST_NGINX_PORT2},
                            tls => 1, timeout => 3);
    my $err = $c->connect;
    like $err, qr/upgrade failed: HTTP 426/, "$name - upgrade refused";
    is $c->http_status, 426, "$name - status kept";
    is $c->http_body, "no websocket here\n", "$name - body kept";
    my ($st, $json) = http_json(GET => '127.0.0.1', $ENV{TEST_NGINX_PORT2},
                                '/json', undef, tls => 1);
    is $st, 200, "$name - https status";
    is_deeply $json, { code => 0, data => [1, 2] }, "$name - https json";
}



=== TEST 16: plain ws upgrade refused by a plain location
--- config
    location /sub { return 403; }
--- perl
my $c = GoimClient->new(transport => 'ws', port => $ENV{TEST_NGINX_SERVER_PORT});
like $c->connect, qr/HTTP 403/, "$name - refused";
is $c->http_status, 403, "$name - status";
like $c->http_head, qr/^HTTP\/1\.1 403/, "$name - head kept";
