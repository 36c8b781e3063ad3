CREATE TABLE `usage_batches` (
	`id` text PRIMARY KEY NOT NULL,
	`applied_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `usage_batches_applied_idx` ON `usage_batches` (`applied_at`);