output "service_url" {
  description = "Base URL of the environment."
  value       = module.service.service_url
}

output "ecs_service_name" {
  description = "ECS service the pipeline deploys to."
  value       = module.service.ecs_service_name
}

output "api_tokens_secret_arn" {
  description = "Secret to put API_TOKENS into."
  value       = module.service.api_tokens_secret_arn
}

output "dynamodb_table_name" {
  description = "The environment's table."
  value       = module.service.dynamodb_table_name
}
