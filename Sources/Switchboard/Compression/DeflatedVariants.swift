import NIOCore

/// The forms of one broadcast frame on one event loop: as built, and compressed for each window
/// size its recipients negotiated, each made once, when a recipient first needs it.
struct DeflatedVariants {
    let plain: ByteBuffer
    /// The last form made (recipients almost always share one window size), then any others.
    private var last: (windowBits: UInt8, frame: ByteBuffer)?
    private var others: [(windowBits: UInt8, frame: ByteBuffer)] = []

    init(plain: ByteBuffer) {
        self.plain = plain
    }

    mutating func frame(windowBits: UInt8, deflater: MessageDeflater?, allocator: ByteBufferAllocator) -> ByteBuffer {
        if let last, last.windowBits == windowBits { return last.frame }
        if let other = others.first(where: { $0.windowBits == windowBits }) { return other.frame }
        guard let deflater else { return plain }
        // `nil`: below the threshold or not smaller; the plain frame is then the form for this size.
        let made = (windowBits, deflater.compressed(plain, windowBits: windowBits, allocator: allocator) ?? plain)
        if let last { others.append(last) }
        last = made
        return made.1
    }
}
