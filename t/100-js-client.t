#!/usr/bin/perl

# The JavaScript client's own tests (clients/js/test/*.test.mjs, node's
# built-in test runner) against a real nginx with the module: packets,
# auth, OP_RAW batches, rooms, watched operations, refused and signed
# tokens, a replaced key, reload, a killed worker, a dead network.  Their
# TAP goes straight to prove.  Needs `make deps` (node, and the `ws`
# package in clients/js/node_modules).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";
use GoimNode;

run_node_tests('clients/js/test', 'client library');
