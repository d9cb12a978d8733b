/// A room-name pattern of ``RoomRules``: an exact name (`lobby`), a prefix (`chat:*`: every room
/// whose name starts with `chat:`; `*` alone matches every room), and `{sub}`, which stands for
/// the connecting user's id (the token's `sub`): `user:{sub}` is `user:alice` for alice and
/// `user:bob` for bob.
///
/// `*` may only end a pattern, and `{sub}` is the only placeholder. Combining them (`files:{sub}:*`)
/// is allowed, but is private per user only when user ids cannot contain the separator after
/// `{sub}`: for user `a`, it also matches `files:a:b:x`, which user `a:b` would think is theirs.
public struct RoomPattern: Sendable, Hashable, CustomStringConvertible {
    enum Piece: Sendable, Hashable {
        case literal(String)
        case subject
    }

    let pieces: [Piece]
    /// Whether the pattern ends with `*`.
    let isPrefix: Bool
    /// The pattern as written.
    public let description: String

    /// Parses `text`; throws when it is empty, has `*` other than at its end, or braces other than
    /// `{sub}`.
    public init(_ text: String) throws(RoomRulesError) {
        guard !text.isEmpty else { throw RoomRulesError("a pattern must not be empty") }
        var body = Substring(text)
        isPrefix = body.hasSuffix("*")
        if isPrefix { body = body.dropLast() }
        guard !body.contains("*") else { throw RoomRulesError("\(text.debugDescription): \"*\" may only end a pattern") }
        if let problem = RoomName.validate(String(body)), !body.isEmpty {
            throw RoomRulesError("\(text.debugDescription): the pattern \(problem)")
        }
        var pieces: [Piece] = []
        var literal = ""
        while let next = body.first {
            if body.hasPrefix("{sub}") {
                if !literal.isEmpty { pieces.append(.literal(literal)) }
                literal = ""
                pieces.append(.subject)
                body = body.dropFirst(5)
            } else if next == "{" || next == "}" {
                throw RoomRulesError("\(text.debugDescription): {sub} is the only placeholder")
            } else {
                literal.append(next)
                body = body.dropFirst()
            }
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        self.pieces = pieces
        self.description = text
    }

    /// Whether `room` matches, with `{sub}` standing for `subject`. An empty subject matches no
    /// `{sub}`.
    public func matches(_ room: String, subject: String) -> Bool {
        let bytes = room.utf8
        var index = bytes.startIndex
        // Compared byte by byte, without building the expanded pattern: this runs once per join
        // and per publish.
        for piece in pieces {
            let expected: String
            switch piece {
            case .literal(let text):
                expected = text
            case .subject:
                guard !subject.isEmpty else { return false }
                expected = subject
            }
            guard bytes[index...].starts(with: expected.utf8) else { return false }
            index = bytes.index(index, offsetBy: expected.utf8.count)
        }
        return isPrefix || index == bytes.endIndex
    }
}
