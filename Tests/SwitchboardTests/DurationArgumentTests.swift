@testable import SwitchboardCLI
import Testing

@Suite("DurationArgument")
struct DurationArgumentTests {
    @Test(arguments: [
        ("250ms", Duration.milliseconds(250)),
        ("30s", .seconds(30)),
        ("5m", .seconds(300)),
        ("1h", .seconds(3600)),
        ("2d", .seconds(172_800)),
        ("45", .seconds(45)),
        ("0.5", .milliseconds(500)),
        ("1.5h", .seconds(5400)),
        ("0", .zero),
        (" 10s ", .seconds(10)),
    ])
    func parsesUnits(text: String, expected: Duration) {
        #expect(DurationArgument.parse(text) == expected)
        #expect(DurationArgument(argument: text)?.duration == expected)
    }

    @Test(arguments: ["", "-5", "-5s", "+5s", "abc", "5x", "s", "ms", "1e3", "inf", "nan", "1.2.3", "5 s", "5S", "0x10", "99999999999999999999"])
    func rejectsGarbage(text: String) {
        #expect(DurationArgument.parse(text) == nil)
        #expect(DurationArgument(argument: text) == nil)
    }

    @Test func describesDefaultsInTheLargestExactUnit() {
        #expect(DurationArgument(duration: .seconds(3600)).defaultValueDescription == "1h")
        #expect(DurationArgument(duration: .seconds(90)).defaultValueDescription == "90s")
        #expect(DurationArgument(duration: .milliseconds(250)).defaultValueDescription == "250ms")
    }
}
