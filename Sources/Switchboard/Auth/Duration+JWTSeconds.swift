extension Duration {
    /// The duration in seconds, with sub-second precision.
    var jwtSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
