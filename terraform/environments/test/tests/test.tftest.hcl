# The test root creates the service the pipeline's DeployTest stage and smoke test target.

mock_provider "aws" {
  source = "../../mocks"
}

run "test_service" {
  command = apply

  assert {
    condition     = module.service.ecs_service_name == "telemetry-test" && module.service.dynamodb_table_name == "telemetry-test-data"
    error_message = "the test root must create service telemetry-test with its own table"
  }
}
