# The prod root creates the service the pipeline's DeployProd stage targets
# (pipeline/tests: DeployProd deploys CLUSTER/SERVICE telemetry-prod).

mock_provider "aws" {
  source = "../../mocks"
}

run "prod_service" {
  command = apply

  assert {
    condition     = module.service.ecs_service_name == "telemetry-prod" && output.ecs_service_name == "telemetry-prod"
    error_message = "the prod root must create service telemetry-prod"
  }
  assert {
    condition     = module.service.dynamodb_table_name == "telemetry-prod-data"
    error_message = "prod has its own table"
  }
}
