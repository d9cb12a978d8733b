// The README's "Metrics and the publish API" block, compiled and run by ReadmeOperationsTests.
// Keep the two identical: the test fails when the README's block no longer appears here verbatim.
// readme-operations:begin
import Hummingbird
import Switchboard
import SwitchboardHummingbird

func addOperations(to router: Router<BasicRequestContext>, switchboard: SwitchboardServer, apiKey: String?) {
    router.addSwitchboardMetrics(switchboard)  // GET /metrics, Prometheus text
    router.addSwitchboardPublishAPI(switchboard, apiKey: apiKey.map(APIKey.init))  // /api/…; nil: 404 api_disabled
}
// readme-operations:end
