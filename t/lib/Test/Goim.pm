package Test::Goim;

# A small Test::Nginx::Socket look-alike (Test::Nginx is not packaged for
# Debian and we have no CPAN). Block format, section names and variables
# follow Test::Nginx so that tests read the same; the full reference is the
# POD at the end of this file.
#
# Differences from Test::Nginx, on purpose:
#   - a fresh nginx per block (start, request/perl, quit), so error.log holds
#     exactly one block's lines and no state leaks between blocks;
#   - fresh random loopback ports per block, one servroot per test file
#     and process (t/servroot_<file>_<pid>, removed when the file passed),
#     so `prove -j` can run files in parallel, the same file twice too;
#   - a `--- perl` section runs Perl code while nginx is up.
#
# Spiffy note: `use Test::Base -Base` source-filters this file. A sub written
# `sub name {` would get `my $self = shift;` inserted; a sub written
# `sub name () {` is a plain function (the filter removes the empty
# prototype, so it takes its arguments in @_ as usual). Every sub below is a
# plain function, hence the `()`. Test::Nginx::Socket uses the same style.

use Test::Base -Base;

use Cwd qw(abs_path);
use File::Basename qw(dirname basename);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX ();
use Scalar::Util qw(blessed);
use Time::HiRes ();
use GoimClient ();

# Test::Base re-exports only part of Test::More; test files get these too.
my @more_test_more;
BEGIN {
    @more_test_more = qw(explain note subtest done_testing BAIL_OUT is_deeply);
    Test::More->import(import => \@more_test_more);
}

our @EXPORT = (@more_test_more, qw(
    run_tests run_block start_nginx stop_nginx check_error_log
    add_block_preprocessor no_goim_module module_available
    skip_unless_module error_log_text wait_for_log
    repo_root servroot nginx_running
));

# --- settings (env overrides for odd setups) --------------------------------

our $Repo         = abs_path(dirname(abs_path(__FILE__)) . '/../../..');
our $NginxBin     = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
our $StreamModule = $ENV{TEST_NGINX_STREAM_MODULE}
                    || '/usr/lib/nginx/modules/ngx_stream_module.so';
our $GoimModule   = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
our $NoModule     = $ENV{TEST_GOIM_NO_MODULE} ? 1 : 0;
# TEST_NGINX_VALGRIND=1: nginx (master and workers) runs under memcheck;
# the default timeouts grow by TEST_NGINX_VALGRIND_SCALE (20).
our $Valgrind     = $ENV{TEST_NGINX_VALGRIND} ? 1 : 0;
our $Scale        = $Valgrind ? ($ENV{TEST_NGINX_VALGRIND_SCALE} || 20) : 1;
our $Timeout      = $ENV{TEST_NGINX_TIMEOUT} || 5 * $Scale;     # start, request
our $QuitTimeout  = $ENV{TEST_NGINX_QUIT_TIMEOUT} || 5 * $Scale; # graceful quit
our $PerlTimeout  = $ENV{TEST_NGINX_PERL_TIMEOUT} || 60 * $Scale;  # a --- perl
# TEST_NGINX_ASAN=1: the module is built with ASan + UBSan and nginx runs
# through tools/asan-nginx.sh (TEST_NGINX_BINARY); their reports go to
# error.log (make test-asan).
our $Asan         = $ENV{TEST_NGINX_ASAN} ? 1 : 0;
our $ServRoot;                    # t/servroot_<test file>_<pid>
# under valgrind or ASan: t/servroot_<mode>_<test file>_<pid>, so that one
# can tell such a run's directories from a plain one's
our $ServTag      = $Asan ? 'asan_' : $Valgrind ? 'valgrind_' : '';

# Lines that fail a block unless its --- error_log allows them.
our @BadLogLines = (qr/\[(?:alert|crit|emerg)\]/,
                    qr/worker process \d+ exited on signal/);

my $Running;                      # {pid => master}
my $ConfWorkers = 1;              # worker_processes of the running conf
my $OwnerPid = $$;                # forked helpers must not stop nginx in END
my @Preprocessors;
my %UsedPorts;
my $ServRootReady;
my %SanSeen;                      # sanitizer log => bytes already checked

END {
    # before Test::Builder's END: $? is the script's own exit status
    my $passed = $? == 0 && Test::More->builder->is_passing;
    local $?;                     # keep the test's exit status
    if ($$ == $OwnerPid) {
        stop_nginx();
        _remove_servroot() if $passed && $ServRootReady;
    }
}

# Become the "subreaper" of nginx: the daemonized master is re-parented to
# us rather than to pid 1 (which does not reap in some sandboxes), so that
# every block's master can be reaped instead of staying a zombie.
{
    my %prctl = (x86_64 => 157, aarch64 => 167);
    my ($arch) = (POSIX::uname())[4];
    syscall($prctl{$arch}, 36, 1, 0, 0, 0)      # PR_SET_CHILD_SUBREAPER
        if $^O eq 'linux' && $arch && $prctl{$arch};
}

for my $sig (qw(INT TERM HUP)) {
    $SIG{$sig} = sub {
        stop_nginx() if $$ == $OwnerPid;
        POSIX::_exit(128 + 2);
    };
}

# --- public helpers -----------------------------------------------------------

sub repo_root () { return $Repo }

sub nginx_running () { return $Running ? 1 : 0 }

# Makes every block of this file run without our module.
sub no_goim_module () { $NoModule = 1 }

sub module_available () { return !$NoModule && -f $GoimModule ? 1 : 0 }

# For files that test the module itself: skip the file until it is built.
sub skip_unless_module () {
    return if module_available();
    Test::More::plan(skip_all => $NoModule ? 'TEST_GOIM_NO_MODULE is set'
                                           : "$GoimModule is not built");
}

sub add_block_preprocessor () { push @Preprocessors, @_ }

# t/servroot_[<mode>_]<test file>_<pid of the test>; TEST_GOIM_SERVROOT
# names another (t/000-harness.t gives its inner files a temporary one).
sub servroot () {
    return $ServRoot if $ServRoot;
    return $ServRoot = $ENV{TEST_GOIM_SERVROOT} if $ENV{TEST_GOIM_SERVROOT};
    return $ServRoot = _servroot_base() . "_$OwnerPid";
}

sub _servroot_base () {
    my $file = abs_path($0) // $0;
    my $rel = $file =~ m{^\Q$Repo\E/t/(.+)$} ? $1 : basename($file);
    $rel =~ s/\.t$//;
    $rel =~ s{[^\w.-]}{_}g;
    return "$Repo/t/servroot_$ServTag$rel";
}

# The current error.log (the running or last block's only).
sub error_log_text () {
    return _slurp(servroot() . '/logs/error.log') // '';
}

# Waits until error.log has a line matching the pattern (string: substring,
# qr//: regex). For checks of things that happen after a reply is sent.
sub wait_for_log () {
    my ($pattern, $timeout) = @_;
    my $deadline = Time::HiRes::time() + ($timeout // $Timeout);
    while (1) {
        return 1 if grep { _line_matches($_, $pattern) }
                    split /\n/, error_log_text();
        return 0 if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.05);
    }
}

# --- running the blocks -------------------------------------------------------

sub run_tests () {
    unless (-x $NginxBin) {
        Test::More::plan(skip_all => "no nginx binary at $NginxBin");
        return;
    }
    # no_plan rather than done_testing: Test::Base's END block plans again
    # unless plan() was called.
    Test::More::plan('no_plan') unless Test::More->builder->has_plan;
    for my $block (blocks()) {
        run_block($block);
    }
}

sub run_block () {
    my ($block) = @_;
    my $name = _block_name($block);
    my $fails = _failures();

    _assign_ports();
    $_->($block) for @Preprocessors;

    if (defined _sec($block, 'need_module') && !module_available()) {
        Test::More->builder->skip("$name: the goim module is not available");
        return;
    }

    my $ok = eval { _run_block_body($block, $name); 1 };
    my $err = $@;
    Test::More::fail("$name - nginx quit within ${QuitTimeout}s (clients "
        . "left open? see worker_shutdown_timeout)") unless stop_nginx();
    Test::More::fail("$name - harness error: $err") unless $ok;
    check_error_log($block) if $ok;
    _check_valgrind($name) if $Valgrind;
    _check_sanitizers($name) if $Asan;
    _diag_failure($name) if _failures() > $fails;
}

sub _run_block_body () {
    my ($block, $name) = @_;
    my $must_die = defined _sec($block, 'must_die');
    my $started = start_nginx($block);

    if ($must_die) {
        Test::More::ok(!$started, "$name - nginx must fail to start");
        return;
    }
    unless ($started) {
        Test::More::fail("$name - nginx started: " . $block->{_start_error});
        return;
    }
    _run_request($block, $name) if defined _sec($block, 'request');
    _run_perl($block, $name) if defined _sec($block, 'perl');
    if (my $wait = _sec($block, 'wait')) {
        Time::HiRes::sleep($wait);
    }
}

# --- nginx lifecycle ----------------------------------------------------------

# start_nginx($block): writes conf/nginx.conf for the block (a Test::Base
# block or a plain hash of sections) and starts nginx. Returns 1 when nginx
# accepts on $TEST_NGINX_SERVER_PORT; 0 on failure, with the reason in
# $block->{_start_error} (and $Test::Goim::StartError).
our $StartError;
sub start_nginx () {
    my ($block) = @_;
    stop_nginx() if $Running;
    _prepare_servroot();
    _assign_ports() unless $ENV{TEST_NGINX_SERVER_PORT};
    my $root = servroot();

    _write_file("$root/logs/error.log", '');      # one block's lines only
    delete @SanSeen{"$root/logs/error.log", "$root/logs/stderr.log"};
    unlink "$root/logs/nginx.pid", "$root/logs/stderr.log",
           glob("$root/valgrind.*.log");
    _write_file("$root/conf/nginx.conf", _nginx_conf($block));

    my $err = _spawn_nginx($root) // _wait_started($root);
    $StartError = $err;
    $block->{_start_error} = $err if ref $block;
    return $err ? 0 : 1;
}

# stop_nginx(): graceful quit, then TERM and KILL when it takes longer than
# $QuitTimeout. Returns 1 if nginx quit by itself (or was not running).
sub stop_nginx () {
    my $r = $Running or return 1;
    undef $Running;
    my @pids = ($r->{pid}, _children_of($r->{pid}));
    kill 'QUIT', $r->{pid};
    return 1 if _wait_gone(\@pids, $QuitTimeout);

    Test::More::diag("nginx did not quit within ${QuitTimeout}s "
        . "(connections still open?); sending TERM");
    kill 'TERM', @pids;
    return 0 if _wait_gone(\@pids, 2);
    kill 'KILL', grep { kill 0, $_ } @pids;
    _wait_gone(\@pids, 2);
    return 0;
}

sub _spawn_nginx () {
    my ($root) = @_;
    my $pid = fork // return "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', "$root/logs/stderr.log";
        open STDERR, '>&', \*STDOUT;
        my @valgrind = !$Valgrind ? () : ('valgrind', '--tool=memcheck',
            '--trace-children=yes', '--child-silent-after-fork=no',
            '--error-exitcode=99', '--num-callers=30',
            '--keep-debuginfo=yes',       # our .so is unloaded at exit
            "--log-file=$root/valgrind.%p.log");
        { exec @valgrind, $NginxBin, '-p', "$root/", '-c', 'conf/nginx.conf',
               '-e', 'logs/error.log' }
        POSIX::_exit(127);
    }
    # With `daemon on` this process exits as soon as the master forked off.
    my $deadline = Time::HiRes::time() + $Timeout * 2;
    while (Time::HiRes::time() < $deadline) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) {
            return undef if $? == 0;
            return "nginx exited with status " . ($? >> 8) . ": "
                . (_slurp("$root/logs/stderr.log") // '');
        }
        Time::HiRes::sleep(0.01);
    }
    kill 'KILL', $pid;
    waitpid $pid, 0;
    return "nginx did not daemonize within " . ($Timeout * 2) . "s";
}

sub _wait_started () {
    my ($root) = @_;
    my $deadline = Time::HiRes::time() + $Timeout;
    my $pid;
    until ($pid) {
        my $t = _slurp("$root/logs/nginx.pid") // '';
        $pid = $1 if $t =~ /^(\d+)\s*$/;
        last if $pid;
        return "no pid file after ${Timeout}s"
            if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.01);
    }
    $Running = { pid => $pid };
    my $port = $ENV{TEST_NGINX_SERVER_PORT};
    until (IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                 Proto => 'tcp', Timeout => 1)) {
        return "port $port not accepting after ${Timeout}s"
            if Time::HiRes::time() >= $deadline;
        return "nginx master $pid died" unless kill 0, $pid;
        Time::HiRes::sleep(0.01);
    }
    # The port accepts before the master forks its workers; tests that look
    # at (or signal) workers need them to exist.
    until (_children_of($pid) >= $ConfWorkers) {
        return "fewer than $ConfWorkers workers after ${Timeout}s"
            if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.01);
    }
    return undef;
}

# Pids whose parent is $ppid (nginx workers, cache helpers), from /proc.
sub _children_of () {
    my ($ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        my $t = _slurp($stat) // next;
        push @kids, $1 if $t =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $ppid;
    }
    return @kids;
}

sub _wait_gone () {
    my ($pids, $timeout) = @_;
    my $deadline = Time::HiRes::time() + $timeout;
    while (grep { _alive($_) } @$pids) {
        waitpid($_, POSIX::WNOHANG()) for @$pids;    # ours, as subreaper
        return 0 if Time::HiRes::time() >= $deadline;
        Time::HiRes::sleep(0.02);
    }
    return 1;
}

# A zombie counts as gone (it has exited; its parent reaps it).
sub _alive () {
    my ($pid) = @_;
    return 0 unless kill 0, $pid;
    my $t = _slurp("/proc/$pid/stat") // return 0;
    return $t =~ /^\d+ \(.*\) Z / ? 0 : 1;
}

# Once per file: remove what aborted runs of this file left (their test
# process is gone; an nginx of theirs still running is killed), then start
# clean.
sub _prepare_servroot () {
    return if $ServRootReady++;
    my $root = servroot();
    unless ($ENV{TEST_GOIM_SERVROOT}) {
        my $base = _servroot_base();
        for my $dir (glob("${base}_[0-9]*"), $base) {
            my ($pid) = $dir =~ /^\Q$base\E_(\d+)/;
            next if $pid && $pid != $OwnerPid && kill 0, $pid;
            _kill_root_nginx($dir);
            remove_tree($dir);
        }
    }
    _kill_root_nginx($root);
    remove_tree($root);
    make_path(map { "$root/$_" } qw(conf logs html client_body_temp
        proxy_temp fastcgi_temp uwsgi_temp scgi_temp));
}

# an nginx master started with -p $root (and its workers)
sub _kill_root_nginx () {
    my ($root) = @_;
    my $t = _slurp("$root/logs/nginx.pid") // '';
    my ($old) = $t =~ /^(\d+)/;
    return unless $old;
    my $cmd = _slurp("/proc/$old/cmdline") // '';
    return unless $cmd =~ /nginx/ && index($cmd, $root) >= 0;
    my @pids = ($old, _children_of($old));
    kill 'KILL', @pids;
    _wait_gone(\@pids, 2);
}

# at exit, when the file passed: its servroot and the ones it made beside
# it (servroot() . '_b', ...)
sub _remove_servroot () {
    my $root = servroot();
    return if $ENV{TEST_GOIM_SERVROOT};
    remove_tree($_) for $root, glob("${root}_*");
}

# --- ports and variables --------------------------------------------------------

# Random free loopback ports below the ephemeral range (so client sockets
# cannot take them between our check and nginx's bind).
sub _free_port () {
    for (1 .. 200) {
        my $port = 10000 + int rand 22000;
        next if $UsedPorts{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
            LocalPort => $port, Proto => 'tcp', Listen => 1, ReuseAddr => 1)
            or next;
        close $s;
        $UsedPorts{$port} = 1;
        return $port;
    }
    die "no free port found\n";
}

sub _assign_ports () {
    $ENV{TEST_NGINX_SERVER_PORT} = _free_port();
    $ENV{TEST_NGINX_STREAM_PORT} = _free_port();
    $ENV{TEST_NGINX_PORT2}       = _free_port();
    $ENV{TEST_NGINX_PORT3}       = _free_port();
    $ENV{TEST_NGINX_SERVROOT}    = servroot();
    $ENV{TEST_NGINX_REPO}        = $Repo;
}

# $TEST_NGINX_X / ${TEST_NGINX_X} -> $ENV{TEST_NGINX_X}; unknown ones die so
# that a typo cannot silently become an nginx variable.
sub _expand () {
    my ($text) = @_;
    return $text unless defined $text && !ref $text;
    $text =~ s{\$(?:\{(TEST_NGINX_\w+)\}|(TEST_NGINX_\w+))}{
        my $v = $1 // $2;
        defined $ENV{$v} ? $ENV{$v} : die "unknown variable \$$v\n"
    }ge;
    return $text;
}

# --- nginx.conf -------------------------------------------------------------------

sub _nginx_conf () {
    my ($block) = @_;
    my $root = servroot();
    my $workers = _sec($block, 'workers') // $ENV{TEST_NGINX_WORKERS} // 1;
    my $level = _sec($block, 'log_level') // 'info';
    my $conns = _sec($block, 'worker_connections') // 1024;
    my $main = _expand(_sec($block, 'main_config')) // '';
    my $use_module = module_available() && !defined _sec($block, 'no_module');
    $ENV{TEST_GOIM_MODULE_LOADED} = $use_module ? 1 : 0;
    s/\s+\z// for $workers, $level, $conns;
    $ConfWorkers = $workers =~ /^\d+$/ ? $workers : 1;    # "auto": >= 1

    my $conf = '';
    # modules that other sites load before ours (`--- load_before`)
    $conf .= "load_module $_;\n"
        for split ' ', _expand(_sec($block, 'load_before')) // '';
    $conf .= "load_module $StreamModule;\n" if -f $StreamModule;
    $conf .= "load_module $GoimModule;\n" if $use_module;
    # Running as root, workers would be `nobody` and could not write here.
    $conf .= "user root;\n" if $> == 0 && $main !~ /^\s*user\s/m;
    $conf .= <<"EOF";
daemon on;
master_process on;
worker_processes $workers;
error_log logs/error.log $level;
pid logs/nginx.pid;

$main

events {
    worker_connections $conns;
}

http {
    access_log off;
    default_type text/plain;
    client_body_temp_path $root/client_body_temp;
    proxy_temp_path $root/proxy_temp;
    fastcgi_temp_path $root/fastcgi_temp;
    uwsgi_temp_path $root/uwsgi_temp;
    scgi_temp_path $root/scgi_temp;

@{[ _expand(_sec($block, 'http_config')) // '' ]}

    server {
        listen 127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT};
        server_name localhost;

@{[ _expand(_sec($block, 'config')) // '' ]}
    }
}
EOF
    my $stream = _sec($block, 'stream_config');
    $conf .= "\nstream {\n" . _expand($stream) . "\n}\n" if defined $stream;
    return $conf;
}

# --- the request ------------------------------------------------------------------

sub _run_request () {
    my ($block, $name) = @_;
    my ($method, $uri, $proto, $body) = _parse_request($block);
    my @headers = grep { /\S/ } split /\n/,
                  _expand(_sec($block, 'more_headers')) // '';
    unshift @headers, 'Host: localhost' unless grep { /^host:/i } @headers;
    my $timeout = _sec($block, 'timeout') // $Timeout;

    my ($status, $resp, $hdrs) = GoimClient::http_request(
        $method, '127.0.0.1', $ENV{TEST_NGINX_SERVER_PORT}, $uri, $body,
        headers => \@headers, timeout => $timeout,
        http10 => ($proto // '') eq 'HTTP/1.0');
    unless (defined $status) {
        Test::More::fail("$name - request failed: $resp");
        return;
    }
    my $code = _sec($block, 'error_code') // 200;
    $code =~ s/\s+//g;
    Test::More::is($status, $code, "$name - status code ok");
    _check_headers($block, $name, $hdrs);
    _check_body($block, $name, $resp);
}

# "METHOD /uri [HTTP/1.x]\nbody": the body loses the one newline that the
# block format adds; `--- request_body` (e.g. with `eval`) gives exact bytes.
sub _parse_request () {
    my ($block) = @_;
    my $req = _expand(_sec($block, 'request'));
    my ($first, $body) = split /\n/, $req, 2;
    $first =~ s/^\s+|\s+$//g;
    my ($method, $uri, $proto) = split ' ', $first;
    die "bad --- request line '$first'\n" unless $method && $uri;
    $body =~ s/\n\z// if defined $body;
    undef $body if defined $body && $body eq '';
    my $exact = _sec($block, 'request_body');
    $body = _expand($exact) if defined $exact;
    return ($method, $uri, $proto, $body);
}

# --- response_headers: "Name: value" must match; "!Name" must be absent.
sub _check_headers () {
    my ($block, $name, $hdrs) = @_;
    my $spec = _expand(_sec($block, 'response_headers')) // return;
    for my $line (grep { /\S/ } split /\n/, $spec) {
        if ($line =~ /^\s*!\s*(\S+)/) {
            Test::More::ok(!defined $hdrs->{lc $1},
                           "$name - header $1 absent");
        } elsif ($line =~ /^\s*([^:\s]+)\s*:\s*(.*?)\s*$/) {
            Test::More::is($hdrs->{lc $1}, $2, "$name - header $1 ok");
        }
    }
}

sub _check_body () {
    my ($block, $name, $resp) = @_;
    my $want = _sec($block, 'response_body');
    if (defined $want) {
        Test::More::is($resp, _expand($want),
                       "$name - response_body - response is expected");
    }
    my $like = _sec($block, 'response_body_like');
    if (defined $like) {
        my $re = ref $like eq 'Regexp' ? $like : do {
            (my $s = _expand($like)) =~ s/\n\z//;
            qr/$s/s;
        };
        Test::More::like($resp, $re, "$name - response_body_like - ok");
    }
}

# --- the perl section -----------------------------------------------------------
# Compiled in package main (the test file's helpers and Test::More functions
# are there), with $block and $name in scope, while nginx runs.

sub _run_perl () {
    my ($block, $name) = @_;
    my $code = _sec($block, 'perl');
    my $file = $0;
    my $line = _section_line($block, 'perl');
    local $SIG{ALRM} = sub { die "--- perl timed out after ${PerlTimeout}s\n" };
    alarm $PerlTimeout;
    my $ok = eval "package main;\n#line $line \"$file\"\n$code\n;1";
    my $err = $@;
    alarm 0;
    Test::More::fail("$name - --- perl died: $err") unless $ok;
}

# Line of a section in the test file, so that perl errors point at it.
sub _section_line () {
    my ($block, $section) = @_;
    my $src = _slurp($0) // return 1;
    my $title = quotemeta $block->name;
    return 1 unless $src =~ /^===\s*$title\s*$/m;
    my $from = $-[0];
    my $at = index $src, "--- $section", $from;
    return 1 if $at < 0;
    return 1 + (substr($src, 0, $at) =~ tr/\n//) + 1;
}

# --- error.log ------------------------------------------------------------------

# check_error_log($block): after nginx stopped. Fails on [alert]/[crit]/
# [emerg]/"exited on signal" lines not allowed by --- error_log, on each
# --- error_log pattern that no line matches, and on each --- no_error_log
# pattern that a line matches. For must_die blocks nginx's stderr counts too
# and bad lines are expected.
sub check_error_log () {
    my ($block) = @_;
    my $name = _block_name($block);
    my $text = error_log_text();
    my $must_die = defined _sec($block, 'must_die');
    $text .= _slurp(servroot() . '/logs/stderr.log') // '' if $must_die;
    my @lines = split /\n/, $text;
    my @want = _patterns($block, 'error_log');
    my @unwanted = _patterns($block, 'no_error_log');

    unless ($must_die) {
        # a worker killed on purpose may have held a shared zone's lock:
        # the master's alert about it goes with the allowed crash
        my %killed = map {
            /worker process (\d+) exited on signal/ ? ($1 => 1) : ()
        } grep { my $l = $_; grep { _line_matches($l, $_) } @want } @lines;
        my @bad = grep {
            my $l = $_;
            (grep { $l =~ $_ } @BadLogLines)
                && !(grep { _line_matches($l, $_) } @want)
                && !($l =~ /shared memory zone ".*" was locked by (\d+)$/
                     && $killed{$1});
        } @lines;
        Test::More::ok(!@bad, "$name - no alert/crit/emerg/crash in error.log")
            or Test::More::diag(join "\n", "unexpected lines:", @bad);
    }
    for my $p (@want) {
        Test::More::ok((grep { _line_matches($_, $p) } @lines),
                       "$name - error_log has " . _pattern_name($p));
    }
    for my $p (@unwanted) {
        my @hits = grep { _line_matches($_, $p) } @lines;
        Test::More::ok(!@hits, "$name - no_error_log " . _pattern_name($p))
            or Test::More::diag(join "\n", @hits);
    }
}

# Section value -> patterns: qr// stay regexes, strings are one substring
# per non-empty line; array refs (from `eval`) are flattened.
sub _patterns () {
    my ($block, $section) = @_;
    my @v = _sec_list($block, $section);
    my @out;
    while (@v) {
        my $x = shift @v;
        next unless defined $x;
        if (ref $x eq 'ARRAY') { unshift @v, @$x; next }
        if (ref $x eq 'Regexp') { push @out, $x; next }
        push @out, grep { /\S/ } split /\n/, _expand($x);
    }
    return @out;
}

sub _line_matches () {
    my ($line, $p) = @_;
    return ref $p eq 'Regexp' ? $line =~ $p : index($line, $p) >= 0;
}

sub _pattern_name () {
    my ($p) = @_;
    return ref $p ? "$p" : "\"$p\"";
}

# --- valgrind -----------------------------------------------------------------

# After a block under TEST_NGINX_VALGRIND, once nginx quit: fails the block
# if a memcheck error's stack goes through our code (ngx_goim_*, goim_*);
# other errors are only reported. Every log is read, not only those with a
# nonzero "ERROR SUMMARY": a SIGKILLed worker's log has no summary.
sub _check_valgrind () {
    my ($name) = @_;
    my (@ours, @other);
    for my $log (sort glob(servroot() . '/valgrind.*.log')) {
        my $t = _slurp($log) // next;
        # one error: "==PID== <what>" up to the next blank "==PID== " line
        for my $err (split /^==\d+== \n/m, $t) {
            next unless $err =~ /^==\d+== +(?:at|by) 0x/m;
            next if $err =~ /^==\d+== (?:HEAP|LEAK|ERROR) SUMMARY/m;
            push @{ $err =~ /\b(?:ngx_)?goim_\w+/ ? \@ours : \@other },
                basename($log) . ":\n$err";
        }
    }
    Test::More::ok(!@ours, "$name - valgrind: no memcheck error in goim code")
        or Test::More::diag(join "\n", @ours);
    Test::More::diag("valgrind errors outside goim code:\n", join "\n", @other)
        if @other;
}

# --- AddressSanitizer and UBSan ----------------------------------------------

# After a block under TEST_NGINX_ASAN, once nginx quit: fails the block if a
# report written since the last check goes through our code (ngx_goim_* or
# goim_* frames or files, ngx_goim_module.so); other reports are only
# shown. ASan and UBSan write to stderr (tools/asan-nginx.sh), that is
# error.log, or stderr.log before nginx opened it, of this block's nginx
# or of a second one that a suite runs in servroot_*.
sub _check_sanitizers () {
    my ($name) = @_;
    my $root = servroot();
    my (@ours, @other);
    for my $log ("$root/logs/error.log", "$root/logs/stderr.log",
                 glob("${root}_*/logs/error.log"))
    {
        my $t = _slurp($log) // next;
        my $from = $SanSeen{$log} // 0;
        $from = 0 if $from > length $t;           # truncated: a new block
        $SanSeen{$log} = length $t;
        # a report starts at "==PID==ERROR:" (ASan) or at a
        # "file:line:col: runtime error:" line (UBSan) and ends before the
        # next report or nginx log line
        my @r = split /^(?===\d+==ERROR:|\S+: runtime error:)/m,
                      substr($t, $from);
        shift @r;
        for my $r (@r) {
            $r =~ s{^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d \[.*}{}ms;
            push @{ $r =~ /\b(?:ngx_)?goim_\w+/ ? \@ours : \@other },
                substr($log, length($Repo) + 1) . ":\n$r";
        }
    }
    Test::More::ok(!@ours, "$name - sanitizers: no ASan/UBSan report in goim "
                           . "code") or Test::More::diag(join "\n", @ours);
    Test::More::diag("sanitizer reports outside goim code:\n", join "\n",
                     @other) if @other;
}

# --- small utilities ----------------------------------------------------------

# A section of a Test::Base block (first value) or of a plain hash.
sub _sec () {
    my ($block, $section) = @_;
    my @v = _sec_list($block, $section);
    return $v[0];
}

sub _sec_list () {
    my ($block, $section) = @_;
    my $v = $block->{$section};
    return () unless defined $v;
    return @$v if blessed($block) && ref $v eq 'ARRAY';
    return ($v);
}

sub _block_name () {
    my ($block) = @_;
    return 'custom' unless blessed $block;
    return $block->name;      # "TEST 1: ..." as written after ===
}

sub _failures () {
    return scalar grep { !$_ } Test::More->builder->summary;
}

sub _diag_failure () {
    my ($name) = @_;
    my $root = servroot();
    my @log = split /\n/, error_log_text();
    splice @log, 0, @log - 40 if @log > 40;
    Test::More::diag("$name failed; servroot $root\n"
        . "--- error.log (last " . scalar(@log) . " lines):\n"
        . join("\n", @log));
}

sub _slurp () {
    my ($path) = @_;
    open my $fh, '<', $path or return undef;
    local $/;
    my $t = <$fh>;
    return $t // '';
}

sub _write_file () {
    my ($path, $text) = @_;
    open my $fh, '>', $path or die "write $path: $!\n";
    print $fh $text;
    close $fh or die "write $path: $!\n";
}

1;

__END__

=head1 NAME

Test::Goim - Test::Nginx-style data-driven nginx tests for goim-for-nginx

=head1 SYNOPSIS

    use FindBin;
    use lib "$FindBin::Bin/lib";
    use Test::Goim;
    use GoimClient qw(:ops http_json);

    run_tests();

    __DATA__

    === TEST 1: hello
    --- config
        location = /t { return 200 "hello\n"; }
    --- request
    GET /t
    --- response_body
    hello

    === TEST 2: goim over websocket
    --- need_module
    --- config
        location = /sub { goim_websocket; }
    --- perl
    my $c = GoimClient->new(transport => 'ws', port => $ENV{TEST_NGINX_SERVER_PORT});
    is $c->connect, undef, "$name - upgraded";

=head1 PER BLOCK

For each block: new ports, conf/nginx.conf written, error.log truncated,
nginx started (C<daemon on; master_process on>), then the request, then the
perl code, then C<--- wait>, then a graceful quit (TERM/KILL after
C<TEST_NGINX_QUIT_TIMEOUT>, default 5 s), then the error.log checks. On any
failure the last 40 lines of error.log are printed.

=head1 SECTIONS

  main_config         main context (after pid/error_log)
  load_before         module files loaded before the stream module and ours
  http_config         http {} context
  config              inside the default server {} (listen $TEST_NGINX_SERVER_PORT)
  stream_config       a stream {} block is written only when present
  workers             worker_processes (default $TEST_NGINX_WORKERS or 1)
  log_level           error_log level (default info)
  worker_connections  events' worker_connections (default 1024)
  no_module           do not load build/ngx_goim_module.so for this block
  need_module         skip the block when the module is not loadable
  must_die            nginx must fail to start; error_log also sees stderr
  request             "GET /t" or "POST /x\nbody" (optional " HTTP/1.0")
  request_body        exact body bytes (use with `eval` for binary)
  more_headers        "Name: value" lines
  timeout             request timeout in seconds (default 5)
  error_code          expected status (default 200)
  response_body       exact body
  response_body_like  regex (string, or qr// via eval), /s
  response_headers    "Name: value" must equal; "!Name" must be absent
  perl                Perl code run in package main while nginx is up;
                      $block and $name are in scope; Test::More functions
                      are available; alarm after TEST_NGINX_PERL_TIMEOUT (60 s)
  wait                seconds to sleep before stopping nginx
  error_log           lines (substrings) or qr// (eval) that must appear;
                      they also allow matching [alert]/[crit]/[emerg] lines
  no_error_log        lines or qr// that must not appear
  SKIP / ONLY         as in Test::Base

Every block fails on [alert], [crit], [emerg] and "worker process N exited
on signal" lines unless a --- error_log pattern matches the line.

=head1 VARIABLES

Substituted as $NAME or ${NAME} in config sections, request, more_headers,
request_body, response_body, response_headers and error_log patterns, and
set in %ENV (fresh per block) for Perl code:

  TEST_NGINX_SERVER_PORT  the http server's port
  TEST_NGINX_STREAM_PORT  free port for a stream server
  TEST_NGINX_PORT2, TEST_NGINX_PORT3  more free ports
  TEST_NGINX_SERVROOT     t/servroot_<test file>_<pid> (t/servroot_asan_
                          <test file>_<pid> under ASan, _valgrind_ under
                          valgrind); removed at exit when the file passed
  TEST_NGINX_REPO         repository root
  TEST_GOIM_MODULE_LOADED 1 if this block's nginx loads our module

Any other TEST_NGINX_* from %ENV is substituted too; an unset one dies.

Settings: TEST_NGINX_BINARY (/usr/sbin/nginx), TEST_NGINX_WORKERS,
TEST_NGINX_TIMEOUT (5), TEST_NGINX_QUIT_TIMEOUT (5),
TEST_NGINX_PERL_TIMEOUT (60), TEST_GOIM_MODULE (build/ngx_goim_module.so),
TEST_GOIM_NO_MODULE (never load the module), TEST_NGINX_VALGRIND (run
nginx under valgrind memcheck, logs in servroot/valgrind.PID.log; a block
fails on an error whose stack has ngx_goim_*/goim_* frames; default
timeouts times TEST_NGINX_VALGRIND_SCALE, 20), TEST_NGINX_ASAN (the
module is built with ASan + UBSan, TEST_NGINX_BINARY is
tools/asan-nginx.sh: reports in error.log; a block fails on a report
that names goim code; make test-asan).

=head1 FUNCTIONS

  run_tests()                  all blocks (plans no_plan unless planned)
  run_block($block)            one block
  add_block_preprocessor(sub { my $block = shift; $block->set_value(config => ...) })
  no_goim_module()             no block of this file loads the module
  module_available()           the module exists and is not disabled
  skip_unless_module()         plan skip_all unless module_available()
  start_nginx($block_or_hash)  1 on success; reason in $Test::Goim::StartError
  stop_nginx()                 1 if nginx quit gracefully
  check_error_log($block)      the error.log tests (after stop_nginx)
  error_log_text()             this block's error.log so far
  wait_for_log($str_or_qr, $timeout)  poll error.log for a line
  servroot(), repo_root(), nginx_running()

=cut
