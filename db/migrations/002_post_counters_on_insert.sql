-- Every post gets its counter row when it is created, so that the persister
-- only ever updates counters: an insert that might carry a negative change
-- would trip the check on like_count before ON CONFLICT could turn it into
-- an update.

create function create_post_counter() returns trigger
language plpgsql as $$
begin
    insert into post_counters (post_id, like_count) values (new.id, 0)
    on conflict (post_id) do nothing;
    return new;
end;
$$;

create trigger posts_create_counter
after insert on posts
for each row execute function create_post_counter();

insert into post_counters (post_id, like_count)
select id, 0 from posts
on conflict (post_id) do nothing;
