# The operations files in contrib/ against the real outputs: a cluster
# node (conf/goim-cluster.conf with goim_status at /status), Redis,
# kafka-mock and goim-job, with a client and pushes so that every
# labelled series exists (per comet, per partition).
#
#   1. contrib/prometheus/goim.rules.yml passes `promtool check rules`
#      and its unit tests (`promtool test rules goim.rules.test.yml`);
#   2. contrib/grafana/goim.json is a dashboard whose panels all query
#      the chosen Prometheus;
#   3. the live goim_status and job /metrics pass `promtool check
#      metrics` (format errors fail; lint problems only where listed
#      below, with the reason);
#   4. every metric name, label and label value the rules and the
#      dashboard use is in those outputs (tools/check-metric-names), and
#      every expression parses (promtool check rules on them); the check
#      fails on a name that is in neither;
#   5. no alert, crash or sanitizer report in the logs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP ();
use Time::HiRes qw(time sleep);
use GoimClient;
use GoimRedis qw(have_redis);
use GoimKafka qw(have_kafka);
use GoimCluster qw(cluster_up cluster_down node_api node_status
                   job_metrics);

my $Repo = "$FindBin::Bin/..";
my $Rules = "$Repo/contrib/prometheus/goim.rules.yml";
my $RulesTest = "$Repo/contrib/prometheus/goim.rules.test.yml";
my $Dashboard = "$Repo/contrib/grafana/goim.json";
my $Check = "$Repo/tools/check-metric-names";
my $Module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
my $Job = $ENV{TEST_GOIM_JOB} || "$Repo/build/goim-job";

plan skip_all => 'promtool is needed (Debian package prometheus)'
    unless grep { -x "$_/promtool" } split /:/, $ENV{PATH};
plan skip_all => 'the module and goim-job must be built'
    unless -f $Module && -x $Job;
plan skip_all => 'redis-server, kafka-mock and kafka-probe are needed'
    unless have_redis() && have_kafka();

# Lint problems `promtool check metrics` reports that are known and
# kept: [pattern, why].  Anything else it reports fails.
my @lint_ok = (
    [qr/^goim_(?:redis|kafka)_latency_ms_total metric names should not contain abbreviated units$/,
     'millisecond sums, documented under these names in the README'],
    [qr/^goim_job_(?:comet|partition)_\w+ no help text$/,
     'the per-comet and per-partition series have TYPE lines only'],
);

my $tmp = tempdir('goim-contrib-XXXXXX', TMPDIR => 1, CLEANUP => 1);

sub run {
    my (@cmd) = @_;
    my $out = `@cmd 2>&1`;
    return ($? >> 8, $out);
}

sub spew {
    my ($file, $text) = @_;
    open my $fh, '>', $file or die "$file: $!\n";
    print $fh $text;
    close $fh or die "$file: $!\n";
}

# --- 1. the rules ---------------------------------------------------------

my ($rc, $out) = run('promtool', 'check', 'rules', $Rules);
is $rc, 0, 'promtool check rules goim.rules.yml' or diag $out;
like $out, qr/SUCCESS: \d+ rules found/, 'rules: promtool found the rules';

($rc, $out) = run('promtool', 'test', 'rules', $RulesTest);
is $rc, 0, 'promtool test rules goim.rules.test.yml' or diag $out;

# --- 2. the dashboard -------------------------------------------------------

my $dash = eval {
    open my $fh, '<', $Dashboard or die "$Dashboard: $!\n";
    JSON::PP->new->decode(do { local $/; <$fh> });
};
ok $dash, 'dashboard: valid JSON' or diag $@;
$dash //= {};
my (@panels, %ids, @bad);
for my $p (@{ $dash->{panels} // [] }) {
    push @bad, "panel $p->{id} twice" if $ids{ $p->{id} // '' }++;
    my $g = $p->{gridPos} // {};
    push @bad, "\"$p->{title}\" outside the 24 columns"
        unless defined $g->{x} && $g->{x} >= 0 && $g->{w}
               && $g->{x} + $g->{w} <= 24;
    next if $p->{type} eq 'row';
    push @panels, $p;
    push @bad, "\"$p->{title}\" has no query" unless @{ $p->{targets} // [] };
    for my $t ($p, @{ $p->{targets} // [] }) {
        push @bad, "\"$p->{title}\" does not use \$datasource"
            unless ($t->{datasource}{uid} // '') eq '${datasource}';
    }
}
ok @panels >= 20, 'dashboard: ' . @panels . ' panels';
is_deeply \@bad, [], 'dashboard: panels have ids, places and queries';
my %vars = map { $_->{name} => $_ } @{ $dash->{templating}{list} // [] };
is $vars{datasource}{type} // '', 'datasource',
    'dashboard: the Prometheus data source is a variable';

# --- 3. the live outputs ----------------------------------------------------

my $cl = cluster_up(nodes => 1);
my $node = $cl->{nodes}[0];

my $c = GoimClient->new(transport => 'ws', port => $node->{ws}, timeout => 5);
my $err = $c->connect;
ok !$err, 'client connected' or diag $err;
ok $c->auth({ mid => 7, key => 'contrib-1', room_id => 'live://9',
              accepts => [1000] }), 'client authenticated';
my ($st, $j) = node_api(0, POST => '/goim/push/room?operation=1000&type=live'
                                   . '&room=9', 'hello');
is $st, 200, 'room push accepted';
my @got = $c->read_pushes(1, 10);
is scalar(@got), 1, 'the push went through Kafka and the job';

# the job has read the registry (per-comet series) and committed
my ($status, $metrics) = ('', '');
my $deadline = time + 15;
until (time > $deadline) {
    $metrics = job_metrics();
    last if $metrics =~ /^goim_job_comet_up\{comet="comet-a"\} 1$/m
            && $metrics =~ /^goim_job_partition_committed_offset\{[^}]*\} [1-9]/m;
    sleep 0.2;
}
$status = node_status(0);
like $status, qr/^goim_online\{[^}]*\} 1$/m, 'status: the client is online';
like $metrics, qr/^goim_job_comet_up\{comet="comet-a"\} 1$/m,
    'job metrics: the comet is up';

spew("$tmp/status.txt", $status);
spew("$tmp/job.txt", $metrics);

for my $f (['goim_status', "$tmp/status.txt"], ['job /metrics', "$tmp/job.txt"]) {
    my ($what, $file) = @$f;
    ($rc, $out) = run('promtool', 'check', 'metrics', '<', $file);
    ok $rc == 0 || $rc == 3,
        "$what: promtool check metrics parses it (exit $rc)" or diag $out;
    my @unexplained = grep {
        my $line = $_;
        !grep { $line =~ $_->[0] } @lint_ok
    } grep { /\S/ } split /\n/, $out;
    is_deeply \@unexplained, [], "$what: no lint problem but the known ones"
        or diag $out;
}

# --- 4. the names the rules and the dashboard use ---------------------------

($rc, $out) = run($Check, '--promql', "$tmp/exprs.yml",
                  '--metrics', "$tmp/status.txt", '--metrics', "$tmp/job.txt",
                  $Rules, $Dashboard);
is $rc, 0, 'every metric, label and value used is in the outputs'
    or diag $out;
like $out, qr/^\d+ expressions, \d+ metric names: all known$/m,
    'check-metric-names: summary' or diag $out;

($rc, $out) = run('promtool', 'check', 'rules', "$tmp/exprs.yml");
is $rc, 0, 'every expression of the rules and the dashboard parses'
    or diag $out;

# the check can fail: a name neither output has, a label value that is
# not there
spew("$tmp/bad.yml", <<'EOF');
groups:
  - name: bad
    rules:
      - alert: Missing
        expr: rate(goim_no_such_metric_total[5m]) > 0
      - alert: BadValue
        expr: goim_dropped_total{reason="no_such_reason"} > 0
EOF
($rc, $out) = run($Check, '--metrics', "$tmp/status.txt",
                  '--metrics', "$tmp/job.txt", "$tmp/bad.yml");
is $rc, 1, 'check-metric-names fails on unknown names';
like $out, qr/unknown metric goim_no_such_metric_total/,
    'check-metric-names: names the unknown metric';
like $out, qr/no series with reason="no_such_reason"/,
    'check-metric-names: names the unknown label value';

# --- 5. logs ------------------------------------------------------------------

$c->close;
my @bad_lines = cluster_down();
is_deeply \@bad_lines, [], 'no alert, crash or sanitizer report in the logs';

done_testing();
