#!/usr/bin/perl

# The demo page (clients/demo) and the client library in headless Chromium
# (Debian's chromium, driven by playwright-core from
# clients/js/node_modules): two pages chat, a page survives a reload and a
# killed worker, a refused token stops the reconnects, a dead network is
# detected.  Screenshots go to build/screenshots/.  Needs `make deps`.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use GoimNode;

run_node_tests('t/browser', 'browser suite',
               need => ['/usr/bin/chromium',
                        'clients/js/node_modules/playwright-core']);
