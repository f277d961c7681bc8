CREATE TABLE "river_leader" (
	"name" text PRIMARY KEY NOT NULL,
	"leader_id" text NOT NULL,
	"elected_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"term" bigint GENERATED ALWAYS AS IDENTITY (sequence name "river_leader_term_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	CONSTRAINT "river_leader_name_length" CHECK (char_length("river_leader"."name") between 1 and 127),
	CONSTRAINT "river_leader_leader_id_length" CHECK (char_length("river_leader"."leader_id") between 1 and 127)
);
