-- API tokens of another service of the platform (clearing), role
-- "service": card events and blocked cards only (registry.RoleService).
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('desk', 'supervisor', 'finance', 'auditor', 'resident', 'service'));
