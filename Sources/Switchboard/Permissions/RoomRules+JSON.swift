import Foundation

extension RoomRules {
    /// Reads rules from a JSON document:
    ///
    /// ```json
    /// {
    ///   "claim": "channels",
    ///   "namespaces": [
    ///     {"pattern": "chat:*", "join": true, "publish": true, "presence": true},
    ///     {"pattern": "dashboard:*", "join": true},
    ///     {"pattern": "user:{sub}", "join": true},
    ///     {"pattern": "team:*", "publish": true, "presence": true}
    ///   ],
    ///   "default": {"join": false}
    /// }
    /// ```
    ///
    /// Every key is optional but `pattern`; a permission left out is `false`; `default` left out
    /// allows nothing. Unknown keys, values of the wrong type, bad patterns and a pattern given
    /// twice are refused, so that a typo cannot silently open or close rooms.
    public init(json: Data) throws(RoomRulesError) {
        let document: JSONValue
        do {
            document = try JSONDecoder().decode(JSONValue.self, from: json)
        } catch {
            throw RoomRulesError("not valid JSON")
        }
        guard let top = document.objectValue else { throw RoomRulesError("the rules must be a JSON object") }
        try Self.checkKeys(of: top, allowed: ["claim", "namespaces", "default"], at: nil)
        var claim: String?
        if let value = top["claim"], value != .null {
            guard let name = value.stringValue, !name.isEmpty else { throw RoomRulesError("claim must be a non-empty string") }
            claim = name
        }
        var namespaces: [Namespace] = []
        if let value = top["namespaces"] {
            guard let list = value.arrayValue else { throw RoomRulesError("namespaces must be an array") }
            var seen: [String: Int] = [:]
            for (index, entry) in list.enumerated() {
                let at = "namespaces[\(index)]"
                guard let object = entry.objectValue else { throw RoomRulesError("\(at) must be an object") }
                try Self.checkKeys(of: object, allowed: ["pattern", "join", "publish", "presence"], at: at)
                guard let text = object["pattern"]?.stringValue else { throw RoomRulesError("\(at).pattern is required and must be a string") }
                let pattern: RoomPattern
                do {
                    pattern = try RoomPattern(text)
                } catch {
                    throw RoomRulesError("\(at).pattern: \(error.message)")
                }
                if let earlier = seen[text] {
                    throw RoomRulesError("\(at).pattern \(text.debugDescription) repeats namespaces[\(earlier)]: only the first would apply")
                }
                seen[text] = index
                namespaces.append(Namespace(pattern, try Self.permissions(object, at: at)))
            }
        }
        var defaultPermissions = Permissions.nothing
        if let value = top["default"] {
            guard let object = value.objectValue else { throw RoomRulesError("default must be an object") }
            try Self.checkKeys(of: object, allowed: ["join", "publish", "presence"], at: "default")
            defaultPermissions = try Self.permissions(object, at: "default")
        }
        self.init(namespaces: namespaces, default: defaultPermissions, claim: claim)
    }

    /// Reads rules from the JSON file at `path` (see ``init(json:)``).
    public static func load(contentsOf path: String) throws(RoomRulesError) -> RoomRules {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw RoomRulesError("\(path): cannot be read")
        }
        do {
            return try RoomRules(json: data)
        } catch {
            throw RoomRulesError("\(path): \(error.message)")
        }
    }

    private static func checkKeys(of object: [String: JSONValue], allowed: Set<String>, at path: String?) throws(RoomRulesError) {
        for key in object.keys.sorted() where !allowed.contains(key) {
            let known = allowed.sorted().joined(separator: ", ")
            throw RoomRulesError("\(path.map { "\($0): " } ?? "")unknown key \(key.debugDescription) (known: \(known))")
        }
    }

    private static func permissions(_ object: [String: JSONValue], at path: String) throws(RoomRulesError) -> Permissions {
        func flag(_ key: String) throws(RoomRulesError) -> Bool {
            guard let value = object[key] else { return false }
            guard let flag = value.boolValue else { throw RoomRulesError("\(path).\(key) must be true or false") }
            return flag
        }
        return Permissions(join: try flag("join"), publish: try flag("publish"), presence: try flag("presence"))
    }
}
