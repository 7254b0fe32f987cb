//! TEMPORARY: replaced by the catalog branch.

pub fn matches(pattern: &str, model: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == model,
        Some((pre, post)) => {
            model.len() >= pre.len() + post.len() && model.starts_with(pre) && model.ends_with(post)
        }
    }
}
