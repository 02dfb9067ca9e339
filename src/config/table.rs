//! The `settings!` macro: one table of a group's settings (flag, variable, file key, bound,
//! default) makes its clap arguments, its keys of the `--config` file, their merge and, when
//! the group names one, its resolved struct. Used by `config` for `serve`'s own settings
//! and by `reports`, `forward` and `console` for theirs.

/// Declares one group of `v8help serve`'s settings, one entry each:
///
/// ```text
/// /// the flag's help text
/// name("--flag", "V8HELP_VARIABLE", "VALUE_NAME"): type clap parses, bound => type used = default;
/// ```
///
/// Each module with settings declares its group with it (this one, `reports`, `forward`,
/// `console`), after a line naming the three types it makes: `Args, File, Values;`. From the
/// one entry come the clap argument (flag and variable) of `Args`, flattened into
/// `ServeArgs`; the key `name` of the `--config` file, read by `File`; and a field of
/// `Values`: the flag or variable over the file, checked by its `Bound` (an error naming the
/// flag), else the default after `=`.
///
/// A group may also name its resolved struct after its three types (`=> #[derive(…)] pub
/// struct ServeConfig from v { … }`, with the fields no single entry gives, each with its
/// default, which may read the table's values as `v`): then every entry is also a field of
/// that struct, with the entry's help as its doc, filled from `Values` by the generated
/// `from_values`, and the struct's `Default` is every default. After an entry's default,
/// `, field NAME` names its field otherwise (`reports_db` is `ReportsConfig::db`), and
/// `, input` makes it no field: the module's own code turns it into others (`--cert` and
/// `--key` into `tls_files`). Without that struct, the module turns its `Values` into its
/// part of `ServeConfig` itself.
///
/// After `type clap parses`, `as T` names another type for the file's value (a size is a
/// string on the command line, a number or a string in the file); after `VALUE_NAME`, more
/// clap attributes may follow (`value_delimiter = ','`).
macro_rules! settings {
    (
        $(#[doc = $args_doc:literal])*
        $args:ident, $file:ident, $values:ident
        => $(#[$config_attr:meta])* pub struct $config:ident from $v:ident {
            $( $(#[doc = $extra_doc:literal])* $extra:ident: $extra_ty:ty = $extra_default:expr, )*
        };
        $(
            $(#[doc = $help:literal])*
            $name:ident($flag:literal, $env:literal $(, $value_name:literal $(, $clap:ident = $clap_value:expr)*)?):
                $arg:ty $(as $raw:ty)?, $bound:expr => $out:ty = $default:expr $(, $kind:ident $($field:ident)?)?;
        )*
    ) => {
        $crate::config::settings! {
            $(#[doc = $args_doc])*
            $args, $file, $values;
            $(
                $(#[doc = $help])*
                $name($flag, $env $(, $value_name $(, $clap = $clap_value)*)?):
                    $arg $(as $raw)?, $bound => $out = $default $(, $kind $($field)?)?;
            )*
        }

        $crate::config::resolved! {
            [$(#[$config_attr])*] $config, $values, $v,
            [$( $(#[doc = $extra_doc])* pub $extra: $extra_ty, )*],
            [$( $extra: $extra_default, )*];
            $( { $(#[doc = $help])* } $($kind $($field)?)? $name: $out; )*
        }

        impl Default for $config {
            /// Every setting at its default.
            fn default() -> Self {
                $config::from_values($values::default())
            }
        }
    };
    (
        $(#[doc = $args_doc:literal])*
        $args:ident, $file:ident, $values:ident;
        $(
            $(#[doc = $help:literal])*
            $name:ident($flag:literal, $env:literal $(, $value_name:literal $(, $clap:ident = $clap_value:expr)*)?):
                $arg:ty $(as $raw:ty)?, $bound:expr => $out:ty = $default:expr $(, $kind:ident $($field:ident)?)?;
        )*
    ) => {
        $(#[doc = $args_doc])*
        #[derive(Debug, Clone, Default, clap::Args)]
        pub struct $args {
            $(
                $(#[doc = $help])*
                #[arg(long, env = $env $(, value_name = $value_name $(, $clap = $clap_value)*)?)]
                pub $name: $arg,
            )*
        }

        /// This group's keys of the `--config` file.
        #[derive(Debug, Default)]
        pub(crate) struct $file {
            $( $name: Option<$crate::config::file_value!($arg $(, $raw)?)>, )*
        }

        impl $file {
            /// The keys, in the table's order.
            pub(crate) const KEYS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// Every entry: flag, variable, key.
            #[cfg(test)]
            pub(crate) const TABLE: &'static [(&'static str, &'static str, &'static str)] =
                &[$( ($flag, $env, stringify!($name)), )*];

            /// Reads the value of `key` from `map` if `key` is one of this group's.
            pub(crate) fn read_value<'de, A: serde::de::MapAccess<'de>>(
                &mut self,
                key: &str,
                map: &mut A,
            ) -> Result<bool, A::Error> {
                $(
                    if key == stringify!($name) {
                        self.$name = map.next_value()?;
                        return Ok(true);
                    }
                )*
                Ok(false)
            }
        }

        /// Every setting of the group as used: the flag or variable over the file, checked,
        /// else the default.
        #[derive(Debug)]
        pub(crate) struct $values {
            $( pub(crate) $name: $out, )*
        }

        impl Default for $values {
            fn default() -> Self {
                $values { $( $name: $default, )* }
            }
        }

        impl $values {
            /// Merges `args` over `file` and checks each setting, in the table's order.
            pub(crate) fn read(args: &$args, file: $file) -> Result<$values, $crate::config::ConfigError> {
                Ok($values {
                    $(
                        $name: $crate::config::Source::or_file(args.$name.clone(), file.$name)
                            .map(|value| $crate::limits::Bound::check(&$bound, value))
                            .transpose()
                            .map_err(|problem| $crate::config::invalid($flag, problem))?
                            .map(Into::into)
                            .unwrap_or_else(|| $default),
                    )*
                })
            }
        }
    };
}
pub(crate) use settings;

/// The resolved struct of a `settings!` group that names one: walks the entries, making a
/// field (with the entry's help as its doc) and a line of `from_values` of each entry marked
/// `pub`, and skipping the others.
macro_rules! resolved {
    // Every entry walked: the struct and `from_values`.
    ([$($doc:tt)*] $config:ident, $values:ident, $v:ident, [$($field:tt)*], [$($init:tt)*];) => {
        $($doc)*
        pub struct $config {
            $($field)*
        }

        impl $config {
            /// The settings of the table as they are, and the other fields at their default.
            fn from_values($v: $values) -> $config {
                $config { $($init)* }
            }
        }
    };
    // An input: no field of its own.
    ([$($doc:tt)*] $config:ident, $values:ident, $v:ident, [$($field:tt)*], [$($init:tt)*];
        { $(#[doc = $help:literal])* } input $name:ident: $ty:ty; $($rest:tt)*) => {
        $crate::config::resolved! {
            [$($doc)*] $config, $values, $v, [$($field)*], [$($init)*];
            $($rest)*
        }
    };
    // An entry whose field has another name.
    ([$($doc:tt)*] $config:ident, $values:ident, $v:ident, [$($field:tt)*], [$($init:tt)*];
        { $(#[doc = $help:literal])* } field $as:ident $name:ident: $ty:ty; $($rest:tt)*) => {
        $crate::config::resolved! {
            [$($doc)*] $config, $values, $v,
            [$($field)* $(#[doc = $help])* pub $as: $ty,],
            [$($init)* $as: $v.$name,];
            $($rest)*
        }
    };
    // Any other entry: a field of the same name and type.
    ([$($doc:tt)*] $config:ident, $values:ident, $v:ident, [$($field:tt)*], [$($init:tt)*];
        { $(#[doc = $help:literal])* } $name:ident: $ty:ty; $($rest:tt)*) => {
        $crate::config::resolved! {
            [$($doc)*] $config, $values, $v,
            [$($field)* $(#[doc = $help])* pub $name: $ty,],
            [$($init)* $name: $v.$name,];
            $($rest)*
        }
    };
}
pub(crate) use resolved;

/// The type of a setting's value in the file: the one named after `as`, else what the flag's
/// type holds.
macro_rules! file_value {
    ($arg:ty) => {
        <$arg as $crate::config::Source>::Raw
    };
    ($arg:ty, $raw:ty) => {
        $raw
    };
}
pub(crate) use file_value;
