package GoimTest;

# Helpers the single-worker suites (t/01*.t, t/02*.t, t/030-tls.t,
# t/05*.t) share: connected and authenticated clients on the default
# servers (TCP on $TEST_NGINX_STREAM_PORT, WebSocket and the logic API on
# $TEST_NGINX_SERVER_PORT), push API calls, the sentinel broadcast that
# ends a burst of pushes, and readers for what a client got.
#
# Every wait is bounded; a helper that cannot set up dies, which fails
# the block.

use strict;
use warnings;

use Exporter 'import';
use GoimClient qw(http_json);

our @EXPORT_OK = qw(
    SENTINEL default_servers port_of connected client api push_ok
    push_or_fail sentinel sentinel_ok collect collect_bodies next_pkt
    close_code
);
our %EXPORT_TAGS = (all => \@EXPORT_OK);

# The op of the broadcast that ends a burst of pushes (body 'END').
use constant SENTINEL => 9999;

# default_servers($block, config => ..., stream => 0): for
# add_block_preprocessor: unless the block has its own, goim_tcp on the
# stream port (not with stream => 0) and, on the http port, `config`
# (default: goim_websocket at /sub and the logic API under /goim/).
sub default_servers {
    my ($block, %o) = @_;
    $block->set_value(stream_config => <<'EOF')
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
        goim_tcp;
    }
EOF
        unless $block->stream_config || defined $o{stream} && !$o{stream};
    $block->set_value(config => $o{config} // <<'EOF') unless $block->config;
    location = /sub { goim_websocket; }
    location /goim/ { goim_logic_api; }
EOF
}

# The default port of a transport: ws on the http port, tcp on the stream
# port.
sub port_of {
    my ($transport) = @_;
    return $transport eq 'ws' ? $ENV{TEST_NGINX_SERVER_PORT}
                              : $ENV{TEST_NGINX_STREAM_PORT};
}

# connected('tcp' | 'ws', %new): a connected (ws: upgraded) client;
# %new goes to GoimClient->new (port, tls, rcvbuf, path, headers...).
# Dies when it cannot connect.
sub connected {
    my ($transport, %o) = @_;
    my $c = GoimClient->new(transport => $transport, timeout => 3,
                            port => port_of($transport), %o);
    my $err = $c->connect;
    die "connect $transport: $err\n" if $err;
    return $c;
}

# client('tcp' | 'ws', $token, %new): connected and, with a token,
# authenticated; the client keeps its key ({key}) and the decoded auth
# reply body ({auth}). Dies when auth fails.
sub client {
    my ($transport, $token, %o) = @_;
    my $c = connected($transport, %o);
    return $c unless $token;
    my $r = $c->auth($token)
        or die "auth $transport failed: " . ($c->error // '') . "\n";
    $c->{key} = $r->{key};
    $c->{auth} = $r;
    return $c;
}

# api($method, $path, $body, %http_opts) -> ($status, $json, $raw, ...)
# on the logic API of the http port.
sub api {
    my ($method, $path, $body, @opt) = @_;
    return http_json($method => '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT},
                     $path, $body, @opt);
}

# push_ok($path, $body): a test that the push was accepted: HTTP 200 with
# {"code":0,"message":""}.
sub push_ok {
    my ($path, $body) = @_;
    my ($st, $j, $raw) = api(POST => $path, $body // '');
    Test::More::is_deeply([$st, $j], [200, { code => 0, message => '' }],
                          "push $path accepted")
        or Test::More::diag("answer: " . ($raw // 'none'));
}

# push_or_fail($path, $body): 1 if the push got HTTP 200 with code 0;
# otherwise a failed test and 0 (no test when it passes).
sub push_or_fail {
    my ($path, $body) = @_;
    my ($st, $j, $raw) = api(POST => $path, $body // '');
    return 1 if $st && $st == 200 && $j && $j->{code} == 0;
    Test::More::fail("push $path: " . ($raw // 'no answer'));
    return 0;
}

# The sentinel broadcast: sentinel() with push_or_fail, sentinel_ok()
# with push_ok (one more test).
sub sentinel    { push_or_fail('/goim/push/all?operation=' . SENTINEL, 'END') }
sub sentinel_ok { push_ok('/goim/push/all?operation=' . SENTINEL, 'END') }

sub _collect {
    my ($c, $fmt) = @_;
    my @got;
    while (1) {
        my ($p) = $c->read_pushes(1, 3);
        unless ($p) { push @got, 'NO SENTINEL'; last }
        last if $p->{op} == SENTINEL && $p->{body} eq 'END';
        push @got, $fmt->($p);
    }
    return \@got;
}

# Every push a client got before the sentinel broadcast, as "op:body"
# (collect) or as bodies (collect_bodies); 'NO SENTINEL' ends the list
# when it did not come.
sub collect        { return _collect($_[0], sub { "$_[0]{op}:$_[0]{body}" }) }
sub collect_bodies { return _collect($_[0], sub { $_[0]{body} }) }

# The next packet's "op:body" (or a string naming the error).
sub next_pkt {
    my ($c, $timeout) = @_;
    my $p = $c->read_packet($timeout // 2)
        or return 'none (' . ($c->error // '?') . ')';
    return "$p->{op}:$p->{body}";
}

# The close code the server sent before closing ('none' without a Close
# frame, 'open' if the connection stayed open).
sub close_code {
    my ($c, $timeout) = @_;
    return 'open' unless $c->expect_closed($timeout // 3);
    return $c->{close_frame} ? $c->close_code // 'empty' : 'none';
}

1;
