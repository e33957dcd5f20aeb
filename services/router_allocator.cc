// SPDX-License-Identifier: Apache-2.0
// jemalloc's compiled-in options for signpost-router (and the benches of its code). jemalloc
// reads this symbol at start-up; the MALLOC_CONF environment variable is read after it, so
// operators can override any option (MALLOC_CONF=thp:default turns huge pages off again).
//
// thp:always backs the heap with transparent huge pages (with the kernel's THP mode `madvise`,
// Debian's default, only memory that asks for them gets them). The router's state is a few
// large hash tables and millions of small nodes reached at random: one client record, one open
// need per event. With 4 KiB pages each of those reads also misses the TLB, and on a virtual
// machine a TLB miss walks two page tables. bench/README.md has the measurements.
extern "C" {
// NOLINTNEXTLINE: the name and type are jemalloc's interface.
const char* malloc_conf = "thp:always,metadata_thp:auto";
}
