// Declarations only (include/CFuzzDriver.h); libFuzzer defines them when linked with -sanitize=fuzzer.
#include "CFuzzDriver.h"
