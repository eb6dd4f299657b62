output "service_url" {
  description = "Base URL of the service (https://domain_name, HTTPS on the ALB's name with a certificate, else HTTP)."
  value       = local.service_url
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = aws_lb.this.dns_name
}

output "dynamodb_table_name" {
  description = "Name of the DynamoDB table (TABLE_NAME of the service)."
  value       = aws_dynamodb_table.this.name
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "ecs_service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_family" {
  description = "Task definition family; the pipeline deploys its latest revision with the new image."
  value       = aws_ecs_task_definition.this.family
}

output "api_tokens_secret_arn" {
  description = "Secrets Manager secret holding API_TOKENS (put its value with aws secretsmanager put-secret-value)."
  value       = aws_secretsmanager_secret.api_tokens.arn
}

output "metrics_token_secret_arn" {
  description = "Secrets Manager secret holding METRICS_TOKEN, when metrics_token_enabled."
  value       = one(aws_secretsmanager_secret.metrics_token[*].arn)
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic that receives the CloudWatch alarms."
  value       = aws_sns_topic.alarms.arn
}

output "codedeploy_deployment_group" {
  description = "CodeDeploy application/deployment group of blue/green deployments (null when rolling)."
  value       = local.blue_green ? "${aws_codedeploy_app.this[0].name}/${aws_codedeploy_deployment_group.this[0].deployment_group_name}" : null
}

output "lambda_function_name" {
  description = "Function serving DELETE /picus/* (null unless lambda_delete_enabled)."
  value       = one(aws_lambda_function.picus_delete[*].function_name)
}
