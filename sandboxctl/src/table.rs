//! Plain-text tables: columns padded to their widest cell, two spaces apart, the last column
//! unpadded.

use std::fmt::Write as _;

/// Renders `rows` (the first one is the header), one line each.
pub fn render<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_all_but_the_last_column() {
        let rows = [
            ["A".to_string(), "BB".into(), "C".into()],
            ["xxx".into(), "y".into(), "zzzz".into()],
        ];
        assert_eq!(render(&rows), "A    BB  C\nxxx  y   zzzz\n");
    }
}
