import CFuzzDriver

#if canImport(Glibc)
import Glibc
#endif

// libFuzzer's driver with this target's input function (see FuzzHandshake.swift).
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
    guard let data else { return 0 }
    return fuzzHandshake(data, size)
})
