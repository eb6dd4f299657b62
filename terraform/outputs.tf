output "service_url" {
  description = "Base URL of the service (HTTPS when certificate_arn is set, else HTTP on the ALB's DNS name)."
  value       = var.certificate_arn == null ? "http://${aws_lb.this.dns_name}" : "https://${aws_lb.this.dns_name}"
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point a CNAME/alias at it)."
  value       = aws_lb.this.dns_name
}

output "codecommit_clone_url_http" {
  description = "HTTPS (git-remote-codecommit or credential helper) clone URL of the CodeCommit repository."
  value       = aws_codecommit_repository.this.clone_url_http
}

output "codecommit_clone_url_ssh" {
  description = "SSH clone URL of the CodeCommit repository."
  value       = aws_codecommit_repository.this.clone_url_ssh
}

output "ecr_repository_url" {
  description = "URL of the ECR repository the pipeline pushes commit-tagged images to."
  value       = aws_ecr_repository.this.repository_url
}

output "dynamodb_table_name" {
  description = "Name of the DynamoDB table (TABLE_NAME of the service)."
  value       = aws_dynamodb_table.this.name
}

output "pipeline_name" {
  description = "Name of the CodePipeline pipeline."
  value       = aws_codepipeline.this.name
}

output "ecs_cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "ecs_service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic that receives the CloudWatch alarms."
  value       = aws_sns_topic.alarms.arn
}
