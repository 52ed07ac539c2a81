#!/usr/bin/env perl
#
# check-layers: keeps a C source tree in floors that call in one direction.
#
#   tools/check-layers.pl [-v] DIR/LAYERS ...
#
# A LAYERS file lists the tree's floors, lowest first, one a line:
#
#   # comment
#   name   path ...
#
# where each path (relative to the LAYERS file's folder) is a folder (all
# .c and .h files under it) or a file.  Every .c and .h file of the tree
# must belong to exactly one floor.  The check fails when
#
#   - a file includes a header of the tree that sits on a higher floor;
#   - a file uses a function defined (not static) in a file of a higher
#     floor: a lower floor reaches a higher one only through a callback
#     that the higher floor hands down;
#   - files call each other in a circle (on one floor too);
#   - a file of the tree belongs to no floor, or to two.
#
# Calls are found by name: a function defined at the start of a line (the
# nginx style: the return type on the line before) is used by every other
# file in which its name appears as a word outside comments and strings.
# -v prints the floors and the file-to-file arrows found.

use strict;
use warnings;

use File::Basename qw(dirname basename);
use File::Find;
use File::Spec;

my $verbose = 0;

if (@ARGV && $ARGV[0] eq '-v') {
    $verbose = 1;
    shift @ARGV;
}

die "usage: $0 [-v] DIR/LAYERS ...\n" unless @ARGV;

my $failed = 0;

for my $layers (@ARGV) {
    $failed += check_tree($layers);
}

exit($failed ? 1 : 0);


sub problem {
    my ($fmt, @args) = @_;
    printf "check-layers: $fmt\n", @args;
    return 1;
}


# the text with comments, strings and character constants blanked
sub code_of {
    my ($path) = @_;

    open my $fh, '<', $path or die "$path: $!\n";
    local $/;
    my $text = <$fh>;
    close $fh;

    $text =~ s{/\*.*?\*/}{ my $c = $&; $c =~ s/[^\n]/ /g; $c }gse;
    $text =~ s{//[^\n]*}{}g;
    $text =~ s{"(?:\\.|[^"\\\n])*"}{""}g;
    $text =~ s{'(?:\\.|[^'\\\n])*'}{''}g;

    return $text;
}


sub check_tree {
    my ($layers) = @_;

    my $root = dirname($layers);
    my (@floors, %floor_of, %rank_of_floor);
    my $problems = 0;

    open my $fh, '<', $layers or die "$layers: $!\n";

    while (my $line = <$fh>) {
        $line =~ s/#.*//;
        my ($name, @paths) = split ' ', $line;
        next unless defined $name;

        $problems += problem("%s: floor \"%s\" has no path", $layers, $name)
            unless @paths;
        $problems += problem("%s: floor \"%s\" listed twice", $layers, $name)
            if exists $rank_of_floor{$name};

        $rank_of_floor{$name} = scalar @floors;
        push @floors, $name;

        for my $p (@paths) {
            my $full = "$root/$p";

            if (-d $full) {
                find({ no_chdir => 1, wanted => sub {
                    return unless -f $_ && /\.[ch]$/;
                    my $rel = File::Spec->abs2rel($_, $root);
                    $problems += assign(\%floor_of, $rel, $name, $layers);
                } }, $full);

            } elsif (-f $full) {
                $problems += assign(\%floor_of, File::Spec->abs2rel($full,
                                    $root), $name, $layers);

            } else {
                $problems += problem("%s: no such file or folder: %s",
                                     $layers, $p);
            }
        }
    }

    close $fh;

    # every source file of the tree has a floor
    my @all;
    find({ no_chdir => 1, wanted => sub {
        return unless -f $_ && /\.[ch]$/;
        push @all, File::Spec->abs2rel($_, $root);
    } }, $root);

    for my $f (sort @all) {
        $problems += problem("%s: %s belongs to no floor", $layers, "$root/$f")
            unless exists $floor_of{$f};
    }

    my @files = sort grep { exists $floor_of{$_} } @all;
    my %rank = map { $_ => $rank_of_floor{$floor_of{$_}} } @files;

    # headers by their name, as #include names them
    my %header;
    for my $f (grep { /\.h$/ } @files) {
        my $b = basename($f);
        $problems += problem("%s: two headers named %s", $layers, $b)
            if exists $header{$b};
        $header{$b} = $f;
    }

    # 1. includes point down or sideways

    my %code;

    for my $f (@files) {
        open my $in, '<', "$root/$f" or die "$root/$f: $!\n";
        my $n = 0;

        while (my $line = <$in>) {
            $n++;
            next unless $line =~ /^\s*#\s*include\s*[<"]([^>"]+)[>"]/;
            my $h = $header{basename($1)} or next;

            if ($rank{$h} > $rank{$f}) {
                $problems += problem(
                    "%s:%d: %s (floor %s) includes %s of the higher floor %s",
                    "$root/$f", $n, $f, $floor_of{$f}, $h, $floor_of{$h});
            }
        }

        close $in;
        $code{$f} = code_of("$root/$f");
    }

    # 2. calls: functions defined at the start of a line, not static

    my %defined_in;

    for my $f (grep { /\.c$/ } @files) {
        my @lines = split /\n/, $code{$f};

        for my $i (1 .. $#lines) {
            next unless $lines[$i] =~ /^([A-Za-z_]\w*)\(/;
            my $name = $1;
            next if $lines[$i - 1] =~ /^\s*static\b/
                    || $lines[$i - 1] =~ /^\s*$/
                    || $lines[$i - 1] =~ /[;{}]\s*$/;
            $defined_in{$name} = $f;
        }
    }

    my (%arrow, %example);

    for my $f (@files) {
        my %seen;

        while ($code{$f} =~ /\b([A-Za-z_]\w*)\b/g) {
            my $name = $1;
            my $d = $defined_in{$name} or next;
            next if $d eq $f || $seen{$name}++;

            # a header only declares what its own floor's files define
            my $from = $f =~ /\.h$/ ? undef : $f;
            next unless defined $from;

            $arrow{$from}{$d} = 1;
            $example{"$from $d"} //= $name;
        }
    }

    for my $f (sort keys %arrow) {
        for my $d (sort keys %{ $arrow{$f} }) {
            if ($rank{$d} > $rank{$f}) {
                $problems += problem(
                    "%s (floor %s) calls %s() of %s on the higher floor %s",
                    "$root/$f", $floor_of{$f}, $example{"$f $d"}, $d,
                    $floor_of{$d});
            }
        }
    }

    # 3. no circles: strongly connected components of the arrows

    for my $scc (tarjan(\@files, \%arrow)) {
        next unless @$scc > 1;

        my %in = map { $_ => 1 } @$scc;
        my @edges;

        for my $f (sort @$scc) {
            for my $d (sort keys %{ $arrow{$f} }) {
                push @edges, "$f -> $d (" . $example{"$f $d"} . ")"
                    if $in{$d};
            }
        }

        $problems += problem("%s: %d files call each other in a circle:\n"
                             . "    %s", $root, scalar @$scc,
                             join "\n    ", @edges);
    }

    if ($verbose) {
        for my $fl (@floors) {
            my @in = grep { $floor_of{$_} eq $fl } @files;
            printf "%-12s %s\n", $fl, join ' ', @in;
        }

        for my $f (sort keys %arrow) {
            printf "  %s -> %s\n", $f,
                join ' ', map { "$_(" . $example{"$f $_"} . ")" }
                          sort keys %{ $arrow{$f} };
        }
    }

    my $narrows = 0;
    $narrows += keys %{ $arrow{$_} } for keys %arrow;

    printf "check-layers: %s: %d files on %d floors, %d arrows between "
           . "files, %s\n", $root, scalar @files, scalar @floors, $narrows,
           $problems ? "$problems problem(s)" : "ok";

    return $problems ? 1 : 0;
}


sub assign {
    my ($floor_of, $file, $name, $layers) = @_;

    if (exists $floor_of->{$file} && $floor_of->{$file} ne $name) {
        return problem("%s: %s is on floors %s and %s", $layers, $file,
                       $floor_of->{$file}, $name);
    }

    $floor_of->{$file} = $name;
    return 0;
}


# Tarjan's strongly connected components, iteratively enough for our sizes
sub tarjan {
    my ($nodes, $arrow) = @_;

    my ($index, @stack, %on, %idx, %low, @out) = (0);
    my $visit;

    $visit = sub {
        my ($v) = @_;
        $idx{$v} = $low{$v} = $index++;
        push @stack, $v;
        $on{$v} = 1;

        for my $w (sort keys %{ $arrow->{$v} || {} }) {
            if (!exists $idx{$w}) {
                $visit->($w);
                $low{$v} = $low{$w} if $low{$w} < $low{$v};

            } elsif ($on{$w}) {
                $low{$v} = $idx{$w} if $idx{$w} < $low{$v};
            }
        }

        if ($low{$v} == $idx{$v}) {
            my @scc;
            my $w;

            do {
                $w = pop @stack;
                $on{$w} = 0;
                push @scc, $w;
            } while ($w ne $v);

            push @out, \@scc;
        }
    };

    for my $v (@$nodes) {
        $visit->($v) unless exists $idx{$v};
    }

    return @out;
}
