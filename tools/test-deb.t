#!/usr/bin/perl
# make test-deb: the Debian packages in build/ (make deb) installed into
# this machine's nginx and used as a user would, then removed.  Needs
# root; changes the system while it runs, so it is not part of make test.
#
#   1. apt-get install ./build/libnginx-mod-goim_*.deb ./build/goim-job_*.deb:
#      the module, its modules-enabled link after the stream module's,
#      the dependencies (nginx ABI, stream module, libraries), the job,
#      its user, conffile, secret, unit and man page; nginx -t passes;
#   2. the system nginx (its own nginx.conf, started or reloaded through
#      its service) runs a cluster node made from the packaged examples:
#      conf.d/ gets goim.conf and goim-internal.conf, the main-context
#      files (goim-cluster.conf, goim-stream.conf) go into
#      modules-enabled/ (the only main-context include Debian's
#      nginx.conf has); Redis and kafka-mock are started here;
#   3. goim-job runs from the package: under systemd where PID 1 is
#      systemd, otherwise the unit's ExecStart line as its User (said in
#      the output); a WebSocket and a TCP client get room and key pushes
#      through Kafka and the job; the job reloads (ExecReload) and stops
#      gracefully (drained, exit 0);
#   4. apt-get remove, then purge: nothing of the packages is left
#      running or on disk.
#
# The machine is left as it was found: packages, users and groups, files
# under the paths the packages and the test touch (compared before and
# after), the nginx service (running or not; its logs are cut back to
# their old size).  Ports are loopback ones from 8400-8999, a range the
# other suites (10000-32767 and the ephemeral ports) do not use.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA ();
use File::Find ();
use File::Temp qw(tempdir);
use FindBin;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);

use lib "$FindBin::Bin/../t/lib";
use GoimClient qw(http_json http_request);
use GoimRedis qw(have_redis redis_start redis_stop rcli);
use GoimKafka qw(have_kafka kafka_start kafka_stop);
use Test::More;

my $Root = abs_path("$FindBin::Bin/..");
my $Abi = '/usr/share/nginx/src/debian/libnginx-mod.abisubstvars';
my $Examples = '/usr/share/doc/libnginx-mod-goim/examples';
my $Unit = '/lib/systemd/system/goim-job.service';
my $JobConf = '/etc/goim/goim-job.conf';
my $TestConf = '/etc/nginx/conf.d/goim-test.conf';
my $TestMain = '/etc/nginx/modules-enabled/99-goim-test.conf';
my $Systemd = -d '/run/systemd/system';
my @Packages = qw(libnginx-mod-goim goim-job);

# what the packages and the test may touch: compared before and after
my @Watched = qw(/etc/nginx /etc/goim /etc/systemd/system
    /usr/lib/nginx/modules /usr/share/nginx/modules-available
    /usr/share/doc/libnginx-mod-goim /usr/share/doc/goim-job
    /lib/systemd/system/goim-job.service /usr/sbin/goim-job
    /usr/share/man/man8/goim-job.8.gz /var/log/goim-job
    /var/lib/dpkg/statoverride /var/lib/systemd/deb-systemd-helper-enabled
    /var/lib/systemd/deb-systemd-helper-masked);

# nothing to restore until the first change
my ($JobPid, $NginxTouched, $UserExisted, $GroupExisted, %LogSize,
    $PidFileExisted);
my $Restored = 1;

BAIL_OUT('make test-deb installs packages: run it as root') if $> != 0;
BAIL_OUT('redis-server and kafka-mock are needed (make deps tools)')
    unless have_redis() && have_kafka();

my %Deb;
for my $p (@Packages) {
    my @f = glob("$Root/build/${p}_*.deb");
    BAIL_OUT("build/ must hold one ${p}_*.deb (make deb), not "
             . scalar(@f)) unless @f == 1;
    $Deb{$p} = $f[0];
}
for my $p (@Packages) {
    BAIL_OUT("$p is installed already; purge it first (apt-get purge $p)")
        if installed($p);
}

my $Tmp = tempdir('goim-test-deb-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $NginxWasRunning = nginx_master() ? 1 : 0;
# nginx -t leaves an empty pid file behind; a running nginx's is its own
push @Watched, '/run/nginx.pid' unless $NginxWasRunning;
$PidFileExisted = -e '/run/nginx.pid';
my %Before = snapshot();
%LogSize = map { $_ => -s $_ } glob('/var/log/nginx/*');
$UserExisted = defined getpwnam('goim');
$GroupExisted = defined getgrnam('goim');

note "nginx " . ($NginxWasRunning ? 'was running' : 'was stopped')
     . '; PID 1 is ' . ($Systemd ? 'systemd' : 'not systemd');

# --- 1. install ---------------------------------------------------------------

$Restored = 0;
my $redis_port = free_port();
redis_start($redis_port);
my $kafka = kafka_start(topics => ['goim-push-topic:2']);

my ($rc, $out) = sh('apt-get', 'install', '-y', '-q',
                    '--no-install-recommends', @Deb{@Packages});
is $rc, 0, 'apt-get install ./build/*.deb' or diag $out;
ok installed($_), "$_ is installed" for @Packages;

ok -f '/usr/lib/nginx/modules/ngx_goim_module.so',
    'the module is in /usr/lib/nginx/modules/';
is readlink('/etc/nginx/modules-enabled/70-mod-goim.conf'),
    '/usr/share/nginx/modules-available/mod-goim.conf',
    'modules-enabled/70-mod-goim.conf links to modules-available/mod-goim.conf';
like slurp('/usr/share/nginx/modules-available/mod-goim.conf'),
    qr{^load_module modules/ngx_goim_module\.so;$}m, 'mod-goim.conf loads it';
my @enabled = sort map { s{.*/}{}r } glob('/etc/nginx/modules-enabled/*.conf');
my ($stream_at) = grep { $enabled[$_] eq '50-mod-stream.conf' } 0 .. $#enabled;
my ($goim_at) = grep { $enabled[$_] eq '70-mod-goim.conf' } 0 .. $#enabled;
ok defined $stream_at && defined $goim_at && $goim_at > $stream_at,
    'loaded after the stream module' or diag "@enabled";

my $abi = slurp($Abi) =~ /^nginx:abi=(\S+)/m ? $1 : 'none';
my $dep = field('libnginx-mod-goim', 'Depends');
like $dep, qr/(?:^|, )\Q$abi\E(?:,|$)/, "depends on the build's $abi";
like field('nginx', 'Provides'), qr/\Q$abi\E/, "the installed nginx provides $abi";
like $dep, qr/(?:^|, )libnginx-mod-stream(?:,|$)/, 'depends on libnginx-mod-stream';
# hiredis is linked into the module and hidden there (another module may
# export its own), so the package does not depend on libhiredis
unlike $dep, qr/libhiredis/, 'hiredis is linked in: no libhiredis dependency';
($rc, $out) = sh('nm', '-D', '--defined-only',
    '/usr/lib/nginx/modules/ngx_goim_module.so');
ok $rc == 0 && $out !~ / [A-Za-z] (?:redis|sds)\w+$/m,
    "the module exports no hiredis symbol"
    or diag $out =~ / [A-Za-z] ((?:redis|sds)\w+)$/m;
like field('goim-job', 'Depends'), qr/libhiredis0\.14/,
    'job: dh_shlibdeps: hiredis';
like $dep, qr/librdkafka1/, 'dh_shlibdeps: librdkafka';
like field('goim-job', 'Depends'), qr/libevent-2\.1-7/, 'job: dh_shlibdeps: libevent';

my $version = field('goim-job', 'Version');
($rc, $out) = sh('/usr/sbin/goim-job', '--version');
like $out, qr/^goim-job \S+/, "/usr/sbin/goim-job --version ($version)";
my @pw = getpwnam('goim');
ok @pw && $pw[2] < 1000, 'system user goim' or diag "@pw";
like $pw[8] // '', qr/nologin|false/, 'goim has no login shell';
like field('goim-job', 'Conffiles'), qr{^\s*/etc/goim/goim-job\.conf }m,
    '/etc/goim/goim-job.conf is a conffile';
is mode_owner($JobConf), '0640 root goim', 'goim-job.conf is root:goim 0640';
is mode_owner('/etc/goim/internal.secret'), '0640 root goim',
    'internal.secret is root:goim 0640';
like slurp('/etc/goim/internal.secret'), qr/^[0-9a-f]{48}\n\z/,
    'internal.secret: 24 random bytes in hex';
like slurp($JobConf), qr{^internal_secret file:/etc/goim/internal\.secret;$}m,
    'the job reads that secret';
ok -f '/usr/share/man/man8/goim-job.8.gz', 'man page goim-job(8)';
ok -f "$Examples/$_", "example $_" for qw(goim.conf goim-stream.conf
    goim-cluster.conf goim-internal.conf goim.json goim.rules.yml);

my %unit = unit($Unit);
is $unit{User}, 'goim', 'the unit runs as goim';
like $unit{ExecReload} // '', qr/kill -HUP \$MAINPID/, 'ExecReload sends SIGHUP';
is $unit{Restart}, 'on-failure', 'restarts on failure';
ok duration($unit{TimeoutStopSec}) > duration(conf_value($JobConf, 'drain_timeout')),
    'TimeoutStopSec exceeds drain_timeout';
is $unit{$_}, 'yes', "$_=yes" for qw(NoNewPrivileges PrivateTmp);
is $unit{ProtectSystem}, 'strict', 'ProtectSystem=strict';
SKIP: {
    skip 'no systemd-analyze', 1 unless -x '/usr/bin/systemd-analyze';
    ($rc, $out) = sh('systemd-analyze', 'verify', '--man=no', $Unit);
    is $rc, 0, 'systemd-analyze verify goim-job.service' or diag $out;
}

($rc, $out) = sh('nginx', '-t');
is $rc, 0, 'nginx -t with the module enabled' or diag $out;

# --- 2. the system nginx: a single node, then a cluster node ----------------

my %port = (3101 => free_port(), 3102 => free_port(), 3111 => free_port(),
            3112 => free_port());
my %node = (tcp => $port{3101}, ws => $port{3102}, api => $port{3111},
            internal => $port{3112}, id => 'comet-deb-test');

# 2a. goim.conf alone in conf.d/, every other module left enabled
$NginxTouched = 1;
spew($TestConf, "# make test-deb (tools/test-deb.t), removed by it\n"
                . example('goim.conf'));
($rc, $out) = sh('nginx', '-t');
is $rc, 0, 'single node: nginx -t with goim.conf in conf.d/' or diag $out;
($rc, $out) = sh('service', 'nginx', $NginxWasRunning ? 'reload' : 'start');
is $rc, 0, 'single node: service nginx ' . ($NginxWasRunning ? 'reload' : 'start')
    or diag $out;
ok wait_port($node{$_}, 15), "single node: nginx listens on the $_ port"
    for qw(ws api);
my $master = nginx_master();
ok $master && (readlink("/proc/$master/exe") // '') eq '/usr/sbin/nginx',
    'it is the system nginx (/run/nginx.pid, /usr/sbin/nginx)';
ok wait_for(sub { grep { maps_module($_) } children($master // 0) }, 10),
    'its workers run the packaged module';
{
    my $ws = client(ws => { mid => 10, key => 'deb-single', room_id => 'live://6',
                            accepts => [1000] });
    push_ok('/goim/push/room?operation=1000&type=live&room=6', 'single-hello');
    is_deeply bodies($ws, 1), ['single-hello'],
        'single node: the API pushed straight to the WebSocket client';
    $ws->close;
}

# 2b. a cluster node: the main-context examples in modules-enabled/, the
# internal push location in conf.d/.  Modules enabled before ours that
# export their own hiredis (libnginx-mod-nchan does) stay enabled: ours
# is linked in and hidden, so they cannot take goim's Redis calls.
diag "enabled beside goim_redis: $_ (exports its own hiredis)"
    for hiredis_modules();
my $main = example('goim-cluster.conf') . example('goim-stream.conf');
for ([goim_server_id => $node{id}],
     [goim_internal_url => "http://127.0.0.1:$node{internal}/goim/internal/push"],
     [goim_client_ports => "$node{tcp} $node{ws} 0"],
     [goim_redis => "127.0.0.1:$redis_port"],
     [goim_kafka => "$kafka topic=goim-push-topic timeout=5s"])
{
    my ($name, $value) = @$_;
    $main =~ s/^\Q$name\E .*;$/$name $value;/m
        or BAIL_OUT("$Examples/goim-cluster.conf has no $name line");
}
spew($TestMain, "# make test-deb (tools/test-deb.t), removed by it\n$main");
spew($TestConf, "# make test-deb (tools/test-deb.t), removed by it\n"
                . example('goim.conf') . example('goim-internal.conf'));

($rc, $out) = sh('nginx', '-t');
is $rc, 0, 'cluster node: nginx -t with the goim examples' or diag $out;
($rc, $out) = sh('service', 'nginx', 'restart');
is $rc, 0, 'cluster node: service nginx restart' or diag $out;
ok wait_port($node{$_}, 15), "cluster node: nginx listens on the $_ port"
    for qw(tcp ws api internal);
ok wait_for(sub { (rcli('EXISTS', "comet_$node{id}") // '') eq '1' }, 15),
    'cluster node: registered in Redis' or diag nginx_errors();

# --- 3. the job --------------------------------------------------------------

my $status_port = free_port();
my $conf = slurp($JobConf);
for ([kafka_brokers => $kafka], [redis => "127.0.0.1:$redis_port"],
     [status_listen => "127.0.0.1:$status_port"],
     [registry_refresh => '500ms'])
{
    my ($name, $value) = @$_;
    $conf =~ s/^#?\s*\Q$name\E .*;$/$name $value;/m
        or BAIL_OUT("$JobConf has no $name line");
}
# kafka-mock answers an empty fetch only when the wait is over
$conf .= "kafka_option fetch.wait.max.ms 10;\n";
spew($JobConf, $conf);
is mode_owner($JobConf), '0640 root goim', 'edited in place: still 0640';

my @as_user = ('setpriv', "--reuid=$unit{User}",
               '--regid=' . ($unit{Group} || $unit{User}), '--init-groups',
               '--no-new-privs', '--');
($rc, $out) = sh(@as_user, '/usr/sbin/goim-job', '-t', '-c', $JobConf);
is $rc, 0, 'goim-job -t as user goim reads its configuration' or diag $out;

my $job_log = "$Tmp/goim-job.log";
if ($Systemd) {
    diag 'goim-job runs under systemd (systemctl start goim-job)';
    ($rc, $out) = sh('systemctl', 'start', 'goim-job');
    is $rc, 0, 'systemctl start goim-job' or diag $out;
} else {
    diag "goim-job runs directly: the unit's ExecStart line as user "
         . "$unit{User} (PID 1 is not systemd)";
    $JobPid = start_direct($unit{ExecStart});
}
my $metrics = '';
ok wait_for(sub {
        $metrics = metrics($status_port);
        metric($metrics, 'goim_job_assigned_partitions') > 0
            && metric($metrics, 'goim_job_comets') >= 1
    }, 30), 'the job holds partitions and knows the comet'
    or diag $metrics, job_log();
is metric($metrics, 'goim_job_kafka_up'), 1, 'job: kafka up';
is metric($metrics, 'goim_job_redis_up'), 1, 'job: redis up';

my $ws = client(ws => { mid => 11, key => 'deb-ws', room_id => 'live://7',
                        accepts => [1000] });
my $tcp = client(tcp => { mid => 12, key => 'deb-tcp', room_id => 'live://7',
                          accepts => [1000] });
push_ok('/goim/push/room?operation=1000&type=live&room=7', 'room-hello');
push_ok('/goim/push/keys?operation=1000&keys=deb-tcp', 'key-hello');
is_deeply bodies($ws, 1), ['room-hello'], 'WebSocket client got the room push';
is_deeply [sort @{ bodies($tcp, 2) }], ['key-hello', 'room-hello'],
    'TCP client got the room and the key push';
my $status = '';
ok wait_for(sub {
        (undef, $status) = http_request(GET => '127.0.0.1', $node{api},
                                        '/goim/status');
        metric($status // '', 'goim_online') == 2
    }, 10), 'goim_status: two online' or diag $status;

# reload: SIGHUP, the same process carries on
if ($Systemd) {
    my $pid = systemd_prop('MainPID');
    ($rc, $out) = sh('systemctl', 'reload', 'goim-job');
    is $rc, 0, 'systemctl reload goim-job' or diag $out;
    is systemd_prop('MainPID'), $pid, 'reload: same process';
} else {
    my $from = length job_log();
    (my $cmd = $unit{ExecReload}) =~ s/\$MAINPID\b/$JobPid/g;
    ($rc, $out) = sh(split ' ', $cmd);
    is $rc, 0, "ExecReload ($cmd)" or diag $out;
    ok wait_for(sub { substr(job_log(), $from) =~ /log file reopened/ }, 5),
        'reload: the job reopened its log';
    ok kill(0, $JobPid), 'reload: same process';
}
push_ok('/goim/push/room?operation=1000&type=live&room=7', 'after-reload');
is_deeply bodies($ws, 1), ['after-reload'], 'delivered after the reload';

# stop: SIGTERM drains within TimeoutStopSec, exit 0
if ($Systemd) {
    ($rc, $out) = sh('systemctl', 'stop', 'goim-job');
    is $rc, 0, 'systemctl stop goim-job' or diag $out;
    is systemd_prop('Result'), 'success', 'stopped: result success';
    is systemd_prop('ExecMainStatus'), 0, 'stopped: exit status 0';
    # running again, so that the package's removal has to stop it
    ($rc, $out) = sh('systemctl', 'start', 'goim-job');
    is $rc, 0, 'systemctl start goim-job again' or diag $out;
} else {
    my $status = stop_direct($unit{KillSignal} || 'TERM',
                             duration($unit{TimeoutStopSec}));
    is $status, 0, 'stopped with ' . ($unit{KillSignal} || 'SIGTERM')
                   . ' within TimeoutStopSec: exit 0';
    like job_log(), qr/drained: every message finished/, 'the job drained';
}
$_->close for $ws, $tcp;

# --- 4. remove, purge, restore ---------------------------------------------------

restore_nginx();

($rc, $out) = sh('apt-get', 'remove', '-y', '-q', @Packages);
is $rc, 0, 'apt-get remove' or diag $out;
ok !installed($_), "$_ removed" for @Packages;
# the nginx-reload trigger reloads a running nginx only where
# policy-rc.d allows it; the test does it in any case
nginx_back() if $NginxWasRunning;
ok !grep({ job_process($_) } all_pids()), 'no goim-job process is left';
ok !grep({ maps_module($_) } all_pids()), 'no process runs the module';
ok !-e '/etc/nginx/modules-enabled/70-mod-goim.conf'
   && -l '/etc/nginx/modules-enabled/70-mod-goim.conf.removed',
   'the link is set aside as 70-mod-goim.conf.removed, as Debian does';
ok -f $JobConf, 'remove keeps the conffile';
($rc, $out) = sh('nginx', '-t');
is $rc, 0, 'nginx -t without the module' or diag $out;

($rc, $out) = sh('apt-get', 'purge', '-y', '-q', @Packages);
is $rc, 0, 'apt-get purge' or diag $out;
ok !-e '/etc/nginx/modules-enabled/70-mod-goim.conf.removed',
    'purge removes the link';
ok !-e '/etc/goim', 'purge removes /etc/goim';
($rc, $out) = sh('dpkg-statoverride', '--list', $JobConf);
isnt $rc, 0, 'purge removes the statoverride';

restore_rest();
my %After = snapshot();
is_deeply \%After, \%Before, 'packages, users, groups and files are as before'
    or diag diff_snapshots(\%Before, \%After);
is nginx_master() ? 1 : 0, $NginxWasRunning,
    'nginx is ' . ($NginxWasRunning ? 'running' : 'stopped') . ' as before';

done_testing();


# --- helpers -------------------------------------------------------------------

END {
    local $?;
    cleanup() unless $Restored;
}

# whatever a failed run left: the job, the test's nginx files, the
# packages, the user, the logs (each step runs only when needed)
sub cleanup {
    stop_direct('KILL', 5) if $JobPid;
    if ($Systemd && installed('goim-job')) {
        system('systemctl stop goim-job >/dev/null 2>&1');
    }
    restore_nginx();
    nginx_back();
    my @left = grep { installed($_) || field($_, 'Status') =~ /config-files/ }
               @Packages;
    system('apt-get', 'purge', '-y', '-q', @left) if @left;
    restore_rest();
}

# the test's nginx files removed, nginx back to running or stopped
sub restore_nginx {
    return unless $NginxTouched;
    $NginxTouched = 0;
    unlink $TestConf, $TestMain;
    nginx_back();
}

sub nginx_back {
    if ($NginxWasRunning) {
        my $master = nginx_master();
        my @old = $master ? children($master) : ();
        my ($rc, $out) = sh('service', 'nginx', $master ? 'reload' : 'start');
        diag "service nginx reload/start: $out" if $rc;
        # the old workers finish their connections and leave
        wait_for(sub { !grep { kill 0, $_ } @old }, 15);
    } elsif (nginx_master()) {
        my ($rc, $out) = sh('service', 'nginx', 'stop');
        diag "service nginx stop: $out" if $rc;
        wait_for(sub { !nginx_master() }, 15);
    }
}

sub restore_rest {
    $Restored = 1;
    system('userdel', 'goim') if !$UserExisted && defined getpwnam('goim');
    system('groupdel', 'goim') if !$GroupExisted && defined getgrnam('goim');
    kafka_stop();
    redis_stop();
    unlink '/run/nginx.pid'
        if !$PidFileExisted && !nginx_master() && -z '/run/nginx.pid';
    for my $log (glob('/var/log/nginx/*')) {
        if (!defined $LogSize{$log}) {
            unlink $log;
        } elsif (-s $log > $LogSize{$log}) {
            truncate $log, $LogSize{$log};
        }
    }
}

sub sh {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!\n";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        open STDIN, '<', '/dev/null';
        $ENV{DEBIAN_FRONTEND} = 'noninteractive';
        { exec @cmd }
        print "exec $cmd[0]: $!\n";
        POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

# what nginx logged since the test started
sub nginx_errors {
    my $log = '/var/log/nginx/error.log';
    return 'nginx error.log: ' . substr(slurp($log), $LogSize{$log} // 0);
}

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
    close $fh or die "$file: $!\n";
}

sub installed {
    my ($p) = @_;
    return field($p, 'Status') =~ /install ok installed/;
}

sub field {
    my ($p, $f) = @_;
    my ($rc, $out) = sh('dpkg-query', '-W', "-f=\${$f}", $p);
    return $rc ? '' : $out;
}

sub mode_owner {
    my ($file) = @_;
    my @st = stat $file or return 'missing';
    return sprintf '%04o %s %s', $st[2] & 07777,
        scalar getpwuid($st[4]) // $st[4], scalar getgrgid($st[5]) // $st[5];
}

# an example with its listen ports moved to the test's loopback ports
sub example {
    my ($name) = @_;
    my $text = slurp("$Examples/$name")
        or BAIL_OUT("$Examples/$name is missing or empty");
    $text =~ s{^(\s*listen\s+)(?:[\d.]+:)?(\d+)}{
        my $p = $port{$2} or BAIL_OUT("$name listens on $2, unknown here");
        "${1}127.0.0.1:$p"
    }gme;
    return "\n# --- $name\n$text";
}

sub free_port {
    our %used;
    for (1 .. 200) {
        my $port = 8400 + int rand 600;
        next if $used{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $port, Proto => 'tcp', Listen => 1) or next;
        close $s;
        $used{$port} = 1;
        return $port;
    }
    die "no free port in 8400-8999\n";
}

sub wait_for {
    my ($cond, $secs) = @_;
    my $deadline = time + $secs;
    while (1) {
        return 1 if $cond->();
        return 0 if time > $deadline;
        sleep 0.1;
    }
}

sub wait_port {
    my ($port, $secs) = @_;
    return wait_for(sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                              Proto => 'tcp') }, $secs);
}

sub nginx_master {
    my $pid = slurp('/run/nginx.pid') =~ /(\d+)/ ? $1 : return undef;
    return kill(0, $pid) && (readlink("/proc/$pid/exe") // '') =~ m{/nginx}
        ? $pid : undef;
}

sub all_pids { return map { m{/proc/(\d+)$} ? $1 : () } glob('/proc/[0-9]*') }

sub children {
    my ($ppid) = @_;
    return grep { (slurp("/proc/$_/stat") =~ /^\d+ \(.*\) \S+ (\d+)/s)[0]
                  // -1 == $ppid } all_pids();
}

# the enabled modules (other than ours) whose .so defines hiredis' API
sub hiredis_modules {
    my @found;
    for my $link (glob('/etc/nginx/modules-enabled/*.conf')) {
        next if $link =~ m{/(?:70-mod-goim|99-goim-test)\.conf$};
        for my $so (slurp($link) =~ /^\s*load_module\s+(\S+?);/mg) {
            $so = "/usr/share/nginx/$so" unless $so =~ m{^/};
            my ($rc, $out) = sh('nm', '-D', '--defined-only', $so);
            push @found, $link if $out =~ /^\S+ T redisAsyncConnect$/m;
        }
    }
    return @found;
}

sub maps_module {
    my ($pid) = @_;
    return slurp("/proc/$pid/maps")
        =~ m{ /usr/lib/nginx/modules/ngx_goim_module\.so};
}

sub job_process {
    my ($pid) = @_;
    return (readlink("/proc/$pid/exe") // '') =~ m{^/usr/sbin/goim-job};
}

# the [Service] settings of a unit (the last value of each)
sub unit {
    my ($file) = @_;
    my (%u, $section);
    for (split /\n/, slurp($file)) {
        $section = $1 if /^\[(\w+)\]/;
        $u{$1} = $2 if ($section // '') eq 'Service' && /^(\w+)=(.*)$/;
    }
    return %u;
}

sub conf_value {
    my ($file, $name) = @_;
    return slurp($file) =~ /^\Q$name\E\s+(\S+);/m ? $1 : undef;
}

# seconds of a systemd or goim-job time ("30s", "10s", "1m", "500ms")
sub duration {
    my ($v) = @_;
    return 0 unless defined $v && $v =~ /^(\d+)\s*(ms|s|min|m)?$/;
    return $1 * { ms => 0.001, s => 1, min => 60, m => 60 }->{$2 // 's'};
}

sub systemd_prop {
    my ($prop) = @_;
    my ($rc, $out) = sh('systemctl', 'show', '-p', $prop, '--value',
                        'goim-job');
    chomp $out;
    return $out;
}

sub start_direct {
    my ($exec) = @_;
    my @cmd = split ' ', $exec;
    my $pid = fork // die "fork: $!\n";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $job_log;
        open STDERR, '>&', \*STDOUT;
        { exec @as_user, @cmd }
        POSIX::_exit(127);
    }
    return $pid;
}

# signals the directly started job; its exit status, -1 when it had to
# be killed after $secs
sub stop_direct {
    my ($sig, $secs) = @_;
    my $pid = $JobPid or return undef;
    $sig =~ s/^SIG//;
    kill $sig, $pid;
    my $deadline = time + $secs;
    while (time < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            undef $JobPid;
            return $? >> 8 | ($? & 127 ? 256 : 0);
        }
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    undef $JobPid;
    return -1;
}

sub job_log {
    return slurp($job_log) unless $Systemd;
    my ($rc, $out) = sh('journalctl', '-u', 'goim-job', '--no-pager', '-n', 200);
    return $out;
}

sub metrics {
    my ($port) = @_;
    my ($st, $body) = http_request(GET => '127.0.0.1', $port, '/metrics');
    return $st && $st == 200 ? $body : '';
}

# the sum of a metric's samples
sub metric {
    my ($text, $name) = @_;
    my $sum = 0;
    $sum += $1 while $text =~ /^\Q$name\E(?:\{[^}]*\})? (-?[\d.]+)$/mg;
    return $sum;
}

sub client {
    my ($transport, $token) = @_;
    my $c = GoimClient->new(transport => $transport, timeout => 5,
                            port => $node{$transport});
    my $err = $c->connect;
    diag nginx_errors() if $err;
    BAIL_OUT("$transport client: $err") if $err;
    $c->auth($token) or BAIL_OUT("$transport auth: " . ($c->error // '?'));
    return $c;
}

sub push_ok {
    my ($path, $body) = @_;
    my ($st, $j, $raw) = http_json(POST => '127.0.0.1', $node{api}, $path,
                                   $body, timeout => 15);
    ok $st && $st == 200 && $j && $j->{code} == 0, "POST $path"
        or diag $raw // 'no answer';
}

sub bodies {
    my ($c, $n) = @_;
    return [ map { $_->{body} } $c->read_pushes($n, 15) ];
}

# packages, users, groups, and every path under @Watched with its type,
# mode, owner and content digest (or link target)
sub snapshot {
    my %s;
    my ($rc, $out) = sh('dpkg-query', '-W',
                        '-f=${Package} ${Version} ${db:Status-Abbrev}\n');
    $s{packages} = $out;
    $s{passwd} = join '', sort map { "$_\n" }
                 split /\n/, (sh('getent', 'passwd'))[1];
    $s{group} = join '', sort map { "$_\n" }
                split /\n/, (sh('getent', 'group'))[1];
    my @paths = grep { -e || -l } @Watched;
    File::Find::find({ no_chdir => 1, wanted => sub {
        my @st = lstat $_ or return;
        my $what = -l _ ? 'link ' . readlink($_)
                 : -d _ ? 'dir'
                 : 'file ' . Digest::SHA->new(256)->addfile($_)->hexdigest;
        $s{"path $_"} = sprintf '%04o %d:%d %s', $st[2] & 07777, $st[4],
                                $st[5], $what;
    } }, @paths) if @paths;
    return %s;
}

sub diff_snapshots {
    my ($old, $new) = @_;
    my @d;
    for my $k (sort keys %{ { %$old, %$new } }) {
        my ($x, $y) = ($old->{$k} // '(none)', $new->{$k} // '(none)');
        next if $x eq $y;
        if ($k =~ /^(packages|passwd|group)$/) {
            my %bx = map { $_ => 1 } split /\n/, $x;
            my %by = map { $_ => 1 } split /\n/, $y;
            push @d, map({ "$k: gone: $_" } grep { !$by{$_} } sort keys %bx),
                     map({ "$k: new: $_" } grep { !$bx{$_} } sort keys %by);
        } else {
            push @d, "$k: $x -> $y";
        }
    }
    return join "\n", @d;
}
