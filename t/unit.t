#!/usr/bin/perl

# Runs the C unit tests: one subtest per t/unit/*.c, executing the binary
# `make unit` built from it in build/unit/ (plus any other executable
# there).  A binary that is missing, fails a test, breaks its plan, dies
# on a signal, exits non-zero or hangs fails its subtest.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Basename qw(basename);
use FindBin;
use TAP::Parser;
use Test::More;

my $root = abs_path("$FindBin::Bin/..");
my $bin_dir = $ENV{TEST_GOIM_UNIT_DIR} || "$root/build/unit";  # make test-asan
my $timeout = 300;

# the sources say which binaries must exist
my %names = map { basename($_, '.c') => 1 } glob("$root/t/unit/*.c");
$names{ basename($_) } = 1 for grep { -f && -x } glob("$bin_dir/*");

ok(%names, 'unit tests found in t/unit/');

for my $name (sort keys %names) {
    subtest $name => sub { run_unit("$bin_dir/$name") };
}

done_testing();


sub run_unit {
    my ($bin) = @_;

    unless (-f $bin && -x _) {
        fail("$bin is built (make unit)");
        return;
    }

    # timeout(1) ends a hung binary and exits non-zero for it
    my $parser = TAP::Parser->new({ exec => [ 'timeout', $timeout, $bin ] });

    while (my $result = $parser->next) {
        if ($result->is_test) {
            (my $desc = $result->description) =~ s/^-\s*//;
            ok($result->is_ok, $desc);

        } elsif ($result->is_comment) {
            note($result->comment);
        }
    }

    fail("TAP: $_") for $parser->parse_errors;

    is($parser->wait, 0, 'exited with status 0, no signal')
        or diag('exit ' . $parser->exit . ', wait status ' . $parser->wait);
}
