package GoimNode;

# Runs node:test files (*.test.mjs under a directory of the repository)
# with node's TAP reporter, so that prove reads their results directly.
# Everything they need comes from `make deps`: a missing piece fails the
# file rather than skipping it, so CI cannot pass without running them.
# Under valgrind (make test-valgrind) they are skipped: their timings
# assume a normal nginx.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(dirname);
use Exporter 'import';

our @EXPORT = qw(run_node_tests);

my $Repo = abs_path(dirname(abs_path(__FILE__)) . '/../..');

sub run_node_tests {
    my ($dir, $what, %o) = @_;

    if ($ENV{TEST_NGINX_VALGRIND}) {
        print "1..0 # SKIP the $what does not run under valgrind\n";
        exit 0;
    }

    my $module = $ENV{TEST_GOIM_MODULE} || "$Repo/build/ngx_goim_module.so";
    my @need = ($module, "$Repo/clients/js/node_modules/ws",
                map { m{^/} ? $_ : "$Repo/$_" } @{ $o{need} || [] });
    my @missing = grep { !-e } @need;
    my $node = `sh -c 'command -v node' 2>/dev/null`;
    chomp $node;
    push @missing, 'node' unless $node;

    if (@missing) {
        print "1..1\nnot ok 1 - the $what needs: @missing "
            . "(make deps; make)\n";
        exit 1;
    }

    my @files = sort glob("$Repo/$dir/*.test.mjs");
    unless (@files) {
        print "1..1\nnot ok 1 - no $dir/*.test.mjs\n";
        exit 1;
    }

    chdir $Repo or die "chdir $Repo: $!";
    exec $node, '--test', "--test-reporter=$Repo/t/lib/tap-flat.mjs",
        @files;
    die "exec $node: $!";
}

1;
