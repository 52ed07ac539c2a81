# $goim_mid, $goim_key and $goim_room in a stream access log: written
# when the TCP goim connection ends, with the identity it authenticated.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::Goim;
use GoimClient qw(:ops);
use Time::HiRes qw(sleep);

skip_unless_module();

run_tests();

__DATA__

=== TEST 1: stream access log carries the connection's mid, key and room
--- stream_config
log_format goim '$remote_addr mid=$goim_mid key=$goim_key room=$goim_room';
server {
    listen 127.0.0.1:$TEST_NGINX_STREAM_PORT;
    access_log logs/goim.log goim;
    goim_tcp;
}
--- perl
my $c = GoimClient->new(transport => 'tcp', timeout => 3,
                        port => $ENV{TEST_NGINX_STREAM_PORT});
ok !$c->connect, "$name - connected";
ok $c->auth({ mid => 77, key => 'logged-key', room_id => 'live://9' }),
   "$name - authenticated";
$c->close;
my $unauthed = GoimClient->new(transport => 'tcp', timeout => 3,
                               port => $ENV{TEST_NGINX_STREAM_PORT});
ok !$unauthed->connect, "$name - second connection";
$unauthed->close;
my $log = "$ENV{TEST_NGINX_SERVROOT}/logs/goim.log";
my $text = '';
for (1 .. 50) {
    $text = do { local (@ARGV, $/) = ($log); <> } // '' if -e $log;
    last if ($text =~ tr/\n//) >= 2;
    sleep 0.1;
}
like $text, qr/^127\.0\.0\.1 mid=77 key=logged-key room=live:\/\/9$/m,
     "$name - authenticated connection logged with its identity";
like $text, qr/^127\.0\.0\.1 mid=- key=- room=-$/m,
     "$name - unauthenticated connection logged without one";
