-- The first schema of "likes". scripts/migrate.sh runs this file once, inside
-- one transaction, and records it in schema_migrations.

create table users (
    id           bigserial primary key,
    display_name text not null default '',
    created_at   timestamptz not null default now()
);

create table posts (
    id         bigserial primary key,
    author_id  bigint not null,
    caption    text not null default '',
    image_name text not null,
    thumb_name text not null,
    width      int not null,
    height     int not null,
    created_at timestamptz not null default now()
);

-- The feed pages through posts newest first.
create index posts_created_at_id_idx on posts (created_at desc, id desc);

-- One row per like. user_id has no foreign key on purpose: load tests sign
-- tokens for users that never signed up.
create table post_likes (
    post_id  bigint not null references posts (id),
    user_id  bigint not null,
    liked_at timestamptz not null default now(),
    primary key (post_id, user_id)
);

-- The count the persister keeps in step with post_likes, so that reading it
-- needs no count(*) over millions of rows.
create table post_counters (
    post_id    bigint primary key references posts (id),
    like_count bigint not null default 0 check (like_count >= 0)
);

-- Where each consumer group resumes: the offset of the next record to read,
-- written in the same transaction as the effects of the records before it.
create table consumer_offsets (
    consumer_group text not null,
    topic          text not null,
    partition      int not null,
    next_offset    bigint not null,
    updated_at     timestamptz not null default now(),
    primary key (consumer_group, topic, partition)
);

-- Every post with its count; a post nobody liked yet has no counter row.
create view post_like_counts as
select p.id as post_id, coalesce(c.like_count, 0) as like_count
from posts p
left join post_counters c on c.post_id = p.id;
