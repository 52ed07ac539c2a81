# goim_io_uring (docs/ARCHITECTURE.md, "The write list"): a worker
# sends a slice of its write list to the kernel in one io_uring call.
# Every client gets every push, in order and intact, with it on (the
# default) and off; the status page says which system call wrote, and
# a socket that fills mid-burst resumes where the ring's send stopped.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops http_json);
use GoimTest qw(SENTINEL default_servers client api push_or_fail sentinel
                collect_bodies);

skip_unless_module();

add_block_preprocessor(sub {
    my $block = shift;
    if (defined $block->{sndbuf}) {
        $block->set_value(stream_config => <<'EOF');
    server {
        listen 127.0.0.1:$TEST_NGINX_STREAM_PORT sndbuf=4k;
        goim_tcp;
    }
EOF
    }
    default_servers($block, config => <<'EOF');
    location = /sub { goim_websocket; }
    location /goim/ {
        client_body_buffer_size 16k;
        goim_logic_api;
    }
    location = /status { goim_status; }
EOF
});

# the sum over workers of a counter, with its label beyond worker and pid
sub metric {
    my ($name, $label) = @_;
    my ($st, $text) = GoimClient::http_request(GET => '127.0.0.1',
        $ENV{TEST_NGINX_SERVER_PORT}, '/status');
    return undef unless $st && $st == 200;
    my $l = $label ? ',' . quotemeta($label) : '';
    my $sum;
    $sum += $1 while $text =~ /^\Q$name\E\{worker="\d+",pid="\d+"$l\} (\d+)$/mg;
    return $sum;
}

# ten TCP and ten WebSocket clients in one room, each with its own key:
# room pushes (each its own frame: goim_room_flush 0), key pushes and a
# broadcast reach all of them in order
sub fan_out {
    my ($name) = @_;
    my @c = map {
        my $t = $_ % 2 ? 'ws' : 'tcp';
        client($t => { key => "k$_", room_id => 'live://u',
                       accepts => [1000, SENTINEL] });
    } 1 .. 20;
    my @want;
    for my $i (1 .. 5) {
        push_or_fail('/goim/push/room?operation=1000&type=live&room=u',
                     "room$i") or last;
        push @want, "room$i";
    }
    push_or_fail('/goim/push/keys?operation=1000&keys=k' . $_, 'key')
        for 1 .. 20;
    push @want, 'key';
    push_or_fail('/goim/push/all?operation=1000', 'all');
    push @want, 'all';
    sentinel();
    my @bad = grep { $_ ne join(',', @want) }
              map { join(',', @{ collect_bodies($_) }) } @c;
    Test::More::is_deeply(\@bad, [],
        "$name - all 20 clients got the 7 pushes in order");
    $_->close for @c;
}

run_tests();

__DATA__

=== TEST 1: on by default: every write of the fan-out goes through the ring
--- workers: 2
--- main_config
goim_room_flush 0;
--- perl
fan_out($name);
my $ring = metric(goim_writes_total => 'method="io_uring"');
my $send = metric(goim_writes_total => 'method="send"');
my $calls = metric('goim_io_uring_submits_total');
# 20 auth replies and 20 x 7 pushes; a slice may carry several of them
ok $ring && $ring >= 20, "$name - writes through io_uring: $ring";
is $send, 0, "$name - none through send()";
ok $calls && $calls <= $ring, "$name - in $calls io_uring_enter() calls";
--- no_error_log
io_uring unavailable
io_uring answered
[alert]



=== TEST 2: goim_io_uring off: the same delivery through send()
--- workers: 2
--- main_config
goim_io_uring off;
goim_room_flush 0;
--- perl
fan_out($name);
is metric(goim_writes_total => 'method="io_uring"'), 0,
   "$name - no write through io_uring";
is metric('goim_io_uring_submits_total'), 0, "$name - no io_uring call";
ok metric(goim_writes_total => 'method="send"') >= 20,
   "$name - the writes went through send()";
--- no_error_log
io_uring
[alert]



=== TEST 3: a socket that fills mid-burst: the rest follows, in order and whole
# 40 pushes of 8 KB to a client with a 4 KB receive buffer behind a 4 KB
# send buffer: the ring's sends come back short or with EAGAIN, and the
# socket's write event resumes from the byte where each stopped
--- sndbuf: 1
--- main_config
goim_send_queue 64 1m;
--- perl
my $slow = client(tcp => { key => 'slow', accepts => [1000, SENTINEL] },
                  rcvbuf => 4096);
my $n = 40;
my @want;
for my $i (1 .. $n) {
    my $body = sprintf('%04d', $i) . ('z' x 8000);
    push_or_fail('/goim/push/keys?operation=1000&keys=slow', $body) or last;
    push @want, sprintf '%04d', $i;
}
my @p = $slow->read_pushes($n, 10);
is_deeply [map { substr $_->{body}, 0, 4 } @p], \@want,
    "$name - all $n in order";
ok !(grep { $_->{body} ne substr($_->{body}, 0, 4) . ('z' x 8000) } @p),
    "$name - every push intact";
ok metric(goim_writes_total => 'method="io_uring"') > 0,
   "$name - the ring wrote";
ok metric(goim_writes_total => 'method="send"') > 0,
   "$name - the write event wrote the rest with send()";
$slow->close;
--- no_error_log
send queue full
[alert]
