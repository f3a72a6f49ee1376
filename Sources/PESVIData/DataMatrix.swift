/// A dataset as one flat, row-major `Float` buffer: `rows` data points × `cols` features.
///
/// Element (r, c) is `values[r * cols + c]`. `columnNames`, when present, has exactly `cols`
/// entries. The memberwise initializer does not check anything; `init(rows:cols:values:columnNames:)`
/// with validation is the checked entry point, and the readers and writers of this module
/// only produce and accept consistent matrices.
public struct DataMatrix: Equatable, Sendable {
    public var rows: Int
    public var cols: Int
    /// Row-major values, `rows * cols` of them.
    public var values: [Float]
    /// One name per column, or nil when the source had no header.
    public var columnNames: [String]?

    /// Checked initializer. Throws `DataError.invalidArgument` when `values.count != rows * cols`,
    /// a size is negative, or `columnNames` does not have `cols` entries.
    public init(rows: Int, cols: Int, values: [Float], columnNames: [String]? = nil) throws {
        guard rows >= 0, cols >= 0 else {
            throw DataError.invalidArgument("DataMatrix: negative shape \(rows)×\(cols)")
        }
        guard values.count == rows * cols else {
            throw DataError.invalidArgument("DataMatrix: \(rows)×\(cols) needs \(rows * cols) values, got \(values.count)")
        }
        if let names = columnNames, names.count != cols {
            throw DataError.invalidArgument("DataMatrix: \(cols) columns but \(names.count) column names")
        }
        self.rows = rows; self.cols = cols; self.values = values; self.columnNames = columnNames
    }

    /// Unchecked initializer for code that builds a consistent buffer itself.
    init(uncheckedRows rows: Int, cols: Int, values: [Float], columnNames: [String]? = nil) {
        self.rows = rows; self.cols = cols; self.values = values; self.columnNames = columnNames
    }

    /// Element (row, col). Traps on an index out of range (like an array subscript).
    public subscript(row: Int, col: Int) -> Float {
        get {
            precondition(row >= 0 && row < rows && col >= 0 && col < cols, "DataMatrix index (\(row), \(col)) out of \(rows)×\(cols)")
            return values[row * cols + col]
        }
        set {
            precondition(row >= 0 && row < rows && col >= 0 && col < cols, "DataMatrix index (\(row), \(col)) out of \(rows)×\(cols)")
            values[row * cols + col] = newValue
        }
    }

    /// The `cols` values of row `row`.
    public func row(_ row: Int) -> ArraySlice<Float> {
        values[(row * cols)..<((row + 1) * cols)]
    }

    /// A new matrix holding the given rows, in the given order (repeats allowed), with the same
    /// column names. Throws `DataError.invalidArgument` naming the first index out of range.
    public func selectingRows(_ indices: [Int]) throws -> DataMatrix {
        if let bad = indices.first(where: { $0 < 0 || $0 >= rows }) {
            throw DataError.invalidArgument("selectingRows: row index \(bad) is out of range 0..<\(rows)")
        }
        var out = [Float]()
        out.reserveCapacity(indices.count * cols)
        for r in indices { out.append(contentsOf: values[(r * cols)..<((r + 1) * cols)]) }
        return DataMatrix(uncheckedRows: indices.count, cols: cols, values: out, columnNames: columnNames)
    }

    /// The flat index and (row, col) of the first NaN or ±infinity, or nil if all are finite.
    public func firstNonFinite() -> (index: Int, row: Int, col: Int)? {
        guard let i = values.firstIndex(where: { !$0.isFinite }) else { return nil }
        return (i, cols == 0 ? 0 : i / cols, cols == 0 ? 0 : i % cols)
    }
}
