// libFuzzer target (main.swift starts the driver): the envelope scanner on any bytes, as a text message (when valid UTF-8, as
// the transport guarantees) and as the JSON header of a binary message (4-byte big-endian length,
// then the header, then the body, as protocol 2.7 says). A crash, a data range outside the
// input, or a data value that does not scan again as JSON is a finding.

import NIOCore

func fuzzEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    check(bytes)
    // As a binary message: the header is what the length says, if it fits.
    if size >= 4 {
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        if length <= size - 4 {
            check(UnsafeRawBufferPointer(rebasing: bytes[4..<(4 + length)]))
        }
    }
    return 0
}

func check(_ bytes: UnsafeRawBufferPointer) {
    guard ByteBuffer(bytes: bytes).isValidUTF8 else { return }
    guard case .envelope(_, _, let range) = JSONScanner.scanEnvelope(bytes) else { return }
    guard let range else { return }
    precondition(range.lowerBound >= 0 && range.upperBound <= bytes.count && !range.isEmpty, "data range \(range) of \(bytes.count) bytes")
    // The data value alone, wrapped in a minimal envelope, is an envelope again with the same data.
    let wrapped = Array(#"{"event":"e","data":"#.utf8) + Array(bytes[range]) + Array("}".utf8)
    wrapped.withUnsafeBytes { again in
        guard case .envelope(_, _, let second?) = JSONScanner.scanEnvelope(again) else {
            preconditionFailure("the data value \(String(decoding: bytes[range], as: UTF8.self).debugDescription) does not scan again")
        }
        precondition(Array(again[second]) == Array(bytes[range]), "data differs when scanned again")
    }
}
